"""`@aksdiag apiserver prod`: the same requests as the slash command, from a mention. Bolt acks
events itself; the work runs on the bot's executor. A delivery Slack retries (same event id,
`X-Slack-Retry-Num`) is dropped, on every replica. Answers go in the mention's thread when it
is in one; errors go to the requester only."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltRequest

from bot import messages
from bot.deps import Deps
from bot.logs import request_context
from diagnostics.scenarios import UsageError
from handlers import access, meta
from handlers.commands import decide_then_run, limited
from handlers.diagnose import Where, run_diagnosis
from handlers.parse import Meta, parse, tokenize

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("app_mention")
    def on_mention(body: dict[str, Any], event: dict[str, Any], request: BoltRequest) -> None:
        retry = (request.headers.get("x-slack-retry-num") or [""])[0] or None
        with request_context():
            deps.submit(handle_mention, deps, body, event, retry)


def handle_mention(
    deps: Deps, body: dict[str, Any], event: dict[str, Any], retry: str | None
) -> None:
    event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
    if not deps.runs.first_time("event", event_id):
        log.info("dropping a delivery already handled: event %s (retry %s)", event_id, retry)
        return
    where = Where(
        channel=str(event.get("channel", "")),
        user=str(event.get("user", "")),
        thread_ts=event.get("thread_ts") or None,
    )
    try:
        _answer(deps, str(event.get("text", "")), where)
    except Exception:
        log.exception("answering a mention failed")


def _answer(deps: Deps, text: str, where: Where) -> None:
    choices = access.visible(deps, where.channel, where.user)
    try:
        parsed = parse(text, deps.config, choices)
    except UsageError as exc:
        where.tell(deps, messages.usage_error(str(exc), deps.settings.command))
        return
    if isinstance(parsed, Meta):
        if parsed.verb == "help" and not tokenize(text):
            where.tell(
                deps, messages.mention_empty() + "\n\n" + messages.help_text(deps.settings.command)
            )
            return
        answer = meta.immediate(deps, parsed, where)
        if answer is not None:
            where.tell(deps, answer)
        else:
            meta.background(deps, parsed, where)
        return
    allowed, _ = access.check(deps, parsed.cluster, where.channel, where.user, parsed.scenario)
    if allowed is False:
        where.tell(deps, access.refusal(deps, parsed.cluster, where.channel, where.user))
    else:
        limited(deps, decide_then_run if allowed is None else run_diagnosis, parsed, where)
