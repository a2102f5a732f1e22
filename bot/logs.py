"""Structured JSON logs for the bot: one object per line, with the request id of the Slack
request being handled, secrets redacted on the way out, and an audit logger for access decisions.

Redaction has two layers: the patterns of `diagnostics.redact.redact_text` (token and key
formats), and the exact values of the secrets this process was given (its environment), so
even a token in an unusual format never reaches a log line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from diagnostics.redact import MASK, redact_text

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "aksdiag_request_id", default=None
)
SECRET_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "AZURE_CLIENT_SECRET",
)
audit = logging.getLogger("aksdiag.audit")


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Tag every log line in this context (and in work it hands to executors that copy the
    context) with a request id."""
    rid = request_id or new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id", ...fields}` with secrets masked."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        super().__init__()
        env = secrets if secrets is not None else os.environ
        values = {v for k in SECRET_ENV if (v := env.get(k))}
        for url in list(values):  # REDIS_URL's own password, as written and decoded
            values |= _url_passwords(url)
        self._secrets = sorted((v for v in values if len(v) >= 6), key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return redact_text(text)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._clean(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or current_request_id()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                out[key] = self._clean(value) if isinstance(value, str) else value
        if record.exc_info:
            out["error"] = self._clean(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def _url_passwords(value: str) -> set[str]:
    if "://" not in value:
        return set()
    try:
        password = urlsplit(value).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


def setup_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every logger's records to `stream` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The SDKs log request bodies at DEBUG; keep them at INFO or above whatever our level.
    for noisy in ("slack_sdk", "slack_bolt", "urllib3", "waitress.queue"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


def audit_line(decision: str, **fields: Any) -> None:
    """One audit record: who asked for what, where, and which rule decided."""
    audit.info(
        "access %s", decision, extra={"fields": {"audit": True, "decision": decision, **fields}}
    )
