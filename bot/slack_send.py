"""The sender: the only code that posts to Slack. It takes messages already rendered (bot.render,
bot.messages) and delivers them: parent, thread replies, parent update, ephemeral answers via
`response_url` or chat.postEphemeral, and a file upload when evidence is too long to show.

Rate limits are retried by slack_sdk's retry handlers (Retry-After honoured); every API error
is counted by method and error; `not_in_channel` becomes `NotInChannel` so the caller can ask
the user to invite the bot; a message Slack still rejects as too long is posted as its
notification text with the full content as a file in its thread (so it still has a ts that
later updates and replies can use). Messages' attached files (long commands) are uploaded
right after them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.metrics import Metrics
from bot.render.blocks import SlackMessage, SnippetFile

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
_NOT_IN_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}
_TOO_LONG = {"msg_too_long", "invalid_blocks", "too_many_blocks"}


def retry_handlers(max_rate_limit_retries: int = 3) -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries),
    ]


def make_web_client(
    token: str | None, base_url: str | None = None, timeout_s: int = 15
) -> WebClient:
    """The bot's WebClient: `SLACK_API_URL` (GovSlack, tests) or slack.com, rate limits retried."""
    url = base_url or DEFAULT_API_URL
    if not url.endswith("/"):
        url += "/"
    return WebClient(token=token, base_url=url, timeout=timeout_s, retry_handlers=retry_handlers())


class SlackSendError(Exception):
    """Slack refused a call; `error` is Slack's error code."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


class NotInChannel(SlackSendError):
    """The bot cannot post in the channel (it was not invited, or the channel is private)."""


class Sender:
    def __init__(self, client: WebClient, metrics: Metrics) -> None:
        self.client = client
        self.metrics = metrics
        self._workspace_url: str | None = None

    def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a message (from the workspace URL auth.test gives, read once); None when
        it cannot be known."""
        if self._workspace_url is None:
            try:
                self._workspace_url = str(self.client.auth_test().get("url") or "")
            except (SlackApiError, OSError):
                log.warning("auth.test failed; answers will not link to earlier ones")
                return None
        if not self._workspace_url:
            return None
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    def _call(self, method: str, call: Callable[[], SlackResponse]) -> dict[str, Any]:
        """One typed WebClient call (`call`), its errors counted and translated."""
        try:
            response = call()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            self.metrics.slack_errors.labels(method, error).inc()
            log.warning("Slack %s failed: %s", method, error)
            if error in _NOT_IN_CHANNEL:
                raise NotInChannel(method, error) from None
            raise SlackSendError(method, error) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post(self, channel: str, message: SlackMessage, thread_ts: str | None = None) -> str:
        """Post a message (in a thread when `thread_ts`); its ts. A message Slack rejects as
        too long is posted as a file instead."""
        try:
            ts = self._post(channel, message.text, message.blocks, thread_ts)
        except SlackSendError as exc:
            if exc.error not in _TOO_LONG or isinstance(exc, NotInChannel):
                raise
            # Too long: the notification text as the message (a real ts, for updates and
            # replies), the whole content as a file beside it.
            ts = self._post(channel, message.text[:3000], None, thread_ts)
            self.upload(
                channel, thread_ts or ts, "message.txt", _plain(message), message.text[:250]
            )
        self.attach(channel, thread_ts or ts, message.files)
        return ts

    def _post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None
    ) -> str:
        data = self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts
            ),
        )
        return str(data.get("ts") or "")

    def attach(self, channel: str, thread_ts: str, files: Sequence[SnippetFile]) -> None:
        """Upload a message's files (long commands) into its thread."""
        for f in files:
            self.upload(channel, thread_ts, f.filename, f.content, f.title)

    def thread(self, channel: str, thread_ts: str, messages: Sequence[SlackMessage]) -> None:
        for message in messages:
            self.post(channel, message, thread_ts)

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        self._call(
            "chat.update",
            lambda: self.client.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            ),
        )

    def ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        self._call(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts, blocks=blocks or None
            ),
        )

    def respond(
        self,
        response_url: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        in_channel: bool = False,
    ) -> bool:
        """Answer through a command's or a button's `response_url` (ephemeral unless
        `in_channel`). False when Slack refused it (the URL expired after 30 minutes / 5 uses)."""
        hook = WebhookClient(response_url, timeout=15, retry_handlers=retry_handlers())
        response = hook.send(
            text=text,
            blocks=blocks,
            replace_original=False,
            response_type="in_channel" if in_channel else "ephemeral",
        )
        if response.status_code != 200:
            self.metrics.slack_errors.labels("response_url", str(response.status_code)).inc()
            log.warning("response_url answered %s: %s", response.status_code, response.body[:200])
            return False
        return True

    def upload(
        self, channel: str, thread_ts: str | None, filename: str, content: str, title: str
    ) -> None:
        try:
            self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                filename=filename,
                content=content,
                title=title,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            self.metrics.slack_errors.labels("files.upload", error).inc()
            raise SlackSendError("files.upload", error) from None


def _plain(message: SlackMessage) -> str:
    """The text of a message's blocks, for when it must travel as a file."""
    parts = [message.text]
    for block in message.blocks:
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            parts.append(str(text["text"]))
        for element in block.get("elements", ()):
            if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
                parts.append(str(element.get("text", "")))
    return "\n\n".join(parts)
