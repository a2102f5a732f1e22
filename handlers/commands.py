"""The slash command (`/aksdiag …`): parse, authorize and acknowledge without network I/O,
then hand the work to the bot's executor. Bad input and refusals ride in the ack itself, as
an ephemeral answer only the requester sees."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot import messages
from bot.deps import Deps
from bot.logs import request_context
from bot.runs import RunRequest
from diagnostics.scenarios import UsageError
from handlers import access, meta
from handlers.diagnose import Where, run_diagnosis
from handlers.parse import Meta, check_length, parse

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.command(deps.settings.command)
    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        with request_context():
            handle_command(deps, ack, command)


def handle_command(deps: Deps, ack: Ack, command: dict[str, Any]) -> None:
    where = Where(
        channel=str(command.get("channel_id", "")),
        user=str(command.get("user_id", "")),
        response_url=command.get("response_url") or None,
    )
    text = str(command.get("text", ""))
    try:
        check_length(text)  # before the text is logged, redacted or parsed
    except UsageError as exc:
        log.info("slash command of %d characters refused", len(text))
        ack(text=messages.usage_error(str(exc), deps.settings.command), response_type="ephemeral")
        return
    fields = {"user": where.user, "channel": where.channel, "text": text}
    log.info("slash command", extra={"fields": fields})
    choices = access.visible(deps, where.channel, where.user)
    try:
        parsed = parse(text, deps.config, choices)
    except UsageError as exc:
        log.info("bad command from %s: %s", where.user, exc)
        ack(text=messages.usage_error(str(exc), deps.settings.command), response_type="ephemeral")
        return
    trigger = str(command.get("trigger_id") or "")
    if isinstance(parsed, Meta):
        answer = meta.immediate(deps, parsed, where)
        if answer is not None:
            ack(text=answer, response_type="ephemeral")
            return
        ack()
        deps.submit(_once, deps, trigger, meta.background, deps, parsed, where)
        return
    allowed, _ = access.check(deps, parsed.cluster, where.channel, where.user, parsed.scenario)
    if allowed is False:
        refusal = access.refusal(deps, parsed.cluster, where.channel, where.user)
        ack(text=refusal, response_type="ephemeral")
        return
    ack()
    work = decide_then_run if allowed is None else run_diagnosis
    deps.submit(_once, deps, trigger, limited, deps, work, parsed, where)


def _once(deps: Deps, trigger: str, work: Callable[..., None], *args: Any) -> None:
    """Slack never resends a slash command, so a second request with the same `trigger_id` is
    a replay of a captured one (its signature stays valid for 5 minutes): it runs nothing."""
    if trigger and not deps.runs.first_time("command", trigger):
        log.warning("dropping a replayed slash command (trigger_id %s)", trigger)
        return
    work(*args)


def limited(
    deps: Deps, work: Callable[..., None], req: RunRequest, where: Where, **kw: Any
) -> None:
    """Run a diagnosis within the user's and the channel's limits (`bot/limits.py`), or tell
    the requester, ephemerally, which limit is reached; the slot is freed when it answered."""
    ticket = deps.limits.admit(where.user, where.channel) if deps.limits else None
    if isinstance(ticket, str):
        log.info("limit reached for %s in %s", where.user, where.channel)
        where.tell(deps, ticket)
        return
    try:
        work(deps, req, where, **kw)
    finally:
        if ticket is not None and deps.limits is not None:
            deps.limits.release(ticket)


def decide_then_run(deps: Deps, req: RunRequest, where: Where, fresh: bool = False) -> None:
    """When user groups were not known at ack time: wait for them here, then run or refuse."""
    deps.usergroups.wait_ready(10.0)
    allowed, _ = access.check(deps, req.cluster, where.channel, where.user, req.scenario)
    if allowed is None:
        where.tell(deps, messages.access_unknown())
    elif not allowed:
        where.tell(deps, access.refusal(deps, req.cluster, where.channel, where.user))
    else:
        run_diagnosis(deps, req, where, fresh=fresh)
