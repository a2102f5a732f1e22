"""Shape checks on a Slack request body before Bolt reads it: a signed body Bolt cannot parse
(a `payload` that is not a JSON object, an `event` that is not an object...) is the sender's
mistake, answered 400, not a 500 from deep inside Bolt. An unsigned one stays a 401: nothing
in it is trusted, not even its shape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

# Top-level keys Bolt reads as objects, and as lists of objects.
_OBJECTS = ("event", "user", "channel", "team", "container", "message", "enterprise", "view")
_LISTS = ("actions", "authorizations")


def _shape_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "the payload is not a JSON object"
    for key in _OBJECTS:
        if doc.get(key) is not None and not isinstance(doc[key], dict | str):
            return f"`{key}` is not an object"
    if isinstance(doc.get("event"), str):
        return "`event` is not an object"
    for key in _LISTS:
        value = doc.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            return f"`{key}` is not a list of objects"
    return None


def malformed(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not read this body, or None when its shape is fine."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        if content_type.startswith("application/json"):
            return _shape_problem(json.loads(text)) if text.strip() else "empty JSON body"
        form = parse_qs(text, keep_blank_values=True)
        if "payload" in form:
            return _shape_problem(json.loads(form["payload"][0]))
    except (json.JSONDecodeError, ValueError):
        return "the payload is not valid JSON"
    return None


def signed(secret: str | None, body: bytes, headers: dict[str, Any]) -> bool:
    """True when the body carries a valid, fresh Slack signature."""
    if not secret:
        return False
    return SignatureVerifier(secret).is_valid(
        body, headers.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"), headers.get("HTTP_X_SLACK_SIGNATURE")
    )
