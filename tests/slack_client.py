"""Plays Slack's side of the HTTP wire: signed slash commands, `app_mention` events and
`block_actions` sent to the bot's `/slack/events`, as Slack sends them (form bodies, JSON
event envelopes, `X-Slack-Signature` / `X-Slack-Request-Timestamp`, `X-Slack-Retry-Num`)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "FAKE0signing0secret0EXAMPLE00000"


@dataclass
class Answer:
    status: int
    body: str
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackClient:
    def __init__(
        self, base_url: str, secret: str = SIGNING_SECRET, team: str = "TFAKE0001"
    ) -> None:
        self.url = base_url.rstrip("/") + "/slack/events"
        self.secret = secret
        self.team = team
        self._n = itertools.count(1)
        self._nonce = secrets.token_hex(4)  # trigger ids are unique across clients, as Slack's

    def sign(self, body: str, ts: int) -> str:
        base = f"v0:{ts}:{body}".encode()
        return "v0=" + hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()

    def post(
        self,
        body: str,
        content_type: str,
        *,
        ts: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        stamp = int(time.time()) if ts is None else ts
        req = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": signature or self.sign(body, stamp),
                **(headers or {}),
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Answer(resp.status, resp.read().decode(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode(), time.monotonic() - started)

    def command(
        self,
        text: str,
        *,
        user: str = "UFAKEALICE",
        channel: str = "CFAKEOPS1",
        response_url: str = "",
        command: str = "/aksdiag",
        **kw: Any,
    ) -> Answer:
        n = next(self._n)
        body = urlencode(
            {
                "token": "FAKEverificationEXAMPLE",
                "team_id": self.team,
                "team_domain": "example",
                "channel_id": channel,
                "channel_name": "ops",
                "user_id": user,
                "user_name": user.lower(),
                "command": command,
                "text": text,
                "api_app_id": "AFAKE0001",
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": f"{n}.{self._nonce}.FAKEtrigger",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def mention(
        self,
        text: str,
        *,
        user: str = "UFAKEALICE",
        channel: str = "CFAKEOPS1",
        event_id: str | None = None,
        thread_ts: str | None = None,
        retry_num: int | None = None,
        **kw: Any,
    ) -> Answer:
        n = next(self._n)
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": text,
            "ts": f"1690000000.{n:06d}",
            "channel": channel,
            "event_ts": f"1690000000.{n:06d}",
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        envelope = {
            "token": "FAKEverificationEXAMPLE",
            "team_id": self.team,
            "api_app_id": "AFAKE0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"EvFAKE{n:06d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team, "user_id": "UBOTFAKE1", "is_bot": True}],
        }
        headers = dict(kw.pop("headers", {}) or {})
        if retry_num is not None:
            headers.update(
                {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            )
        return self.post(json.dumps(envelope), "application/json", headers=headers, **kw)

    def action(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "UFAKEALICE",
        channel: str = "CFAKEOPS1",
        message_ts: str = "1700000001.000100",
        thread_ts: str | None = None,
        response_url: str = "",
        **kw: Any,
    ) -> Answer:
        n = next(self._n)
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "", "blocks": []}
        if thread_ts:
            message["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "team": {"id": self.team, "domain": "example"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team},
            "api_app_id": "AFAKE0001",
            "token": "FAKEverificationEXAMPLE",
            "trigger_id": f"{n}.{self._nonce}.FAKEaction",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "channel": {"id": channel, "name": "ops"},
            "message": message,
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "type": "button",
                    "value": value,
                    "text": {"type": "plain_text", "text": "x"},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kw
        )
