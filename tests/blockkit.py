"""Block Kit validation through slack_sdk.models: every block of a payload parsed and checked
against Slack's limits (text lengths, element counts), plus the per-message limits."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block

MAX_BLOCKS, MAX_MESSAGE_CHARS = 50, 11000


def validate_message(message: dict[str, Any]) -> None:
    blocks = message.get("blocks") or []
    assert message.get("text"), "a message needs its notification text"
    assert len(blocks) <= MAX_BLOCKS, f"{len(blocks)} blocks"
    assert len(json.dumps(blocks)) <= MAX_MESSAGE_CHARS + 500
    unique_action_ids(message)
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError past a limit
        for text in _texts(raw):
            assert text.count("```") % 2 == 0, f"an unclosed code fence: {text[:200]}"


def _texts(block: dict[str, Any]) -> list[str]:
    out = []
    text = block.get("text")
    if isinstance(text, dict) and text.get("type") == "mrkdwn":
        out.append(text["text"])
    for element in block.get("elements", ()) or ():
        if isinstance(element, dict) and element.get("type") == "mrkdwn":
            out.append(element["text"])
    return out


def validate_payload(payload: dict[str, Any]) -> None:
    validate_message(payload["parent"])
    for message in payload["thread"]:
        validate_message(message)


def unique_action_ids(message: dict[str, Any]) -> None:
    ids = [
        e.get("action_id")
        for b in message.get("blocks") or ()
        for e in b.get("elements", ()) or ()
        if isinstance(e, dict) and e.get("action_id")
    ]
    assert len(ids) == len(set(ids)), f"an action_id used twice in one message: {ids}"
