"""The parent message's buttons: Re-run (fresh, bypassing the cache) and Show commands.

A button's `value` is data from the client, so it is validated as if typed: the scenario, the
cluster, the arguments, and the clicking user's access to that cluster in that channel. A
forged value (another cluster, unknown keys, bad arguments) runs nothing and is audited.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App

from bot import messages
from bot.deps import Deps
from bot.logs import audit_line, request_context
from bot.render.blocks import COMMANDS_ACTION, RERUN_ACTION
from bot.runs import RunRequest
from diagnostics.scenarios import UsageError, parse_args, resolve_scenario
from handlers import access
from handlers.commands import decide_then_run, limited
from handlers.diagnose import Where, show_commands
from handlers.parse import request_tokens

log = logging.getLogger(__name__)
MAX_VALUE = 2000


def register(app: App, deps: Deps) -> None:
    @app.action(RERUN_ACTION)
    def on_rerun(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        with request_context():
            deps.submit(handle_action, deps, body, RERUN_ACTION)

    @app.action(COMMANDS_ACTION)
    def on_commands(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        with request_context():
            deps.submit(handle_action, deps, body, COMMANDS_ACTION)


def parse_value(value: object, deps: Deps) -> RunRequest:
    """A button value -> a request, with the same checks as typed text."""
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        raise UsageError("malformed button value")
    try:
        data = json.loads(value)
    except ValueError:
        raise UsageError("malformed button value") from None
    if not isinstance(data, dict) or set(data) != {"s", "c", "a"}:
        raise UsageError("malformed button value")
    scenario, cluster = data["s"], data["c"]
    if not isinstance(scenario, str) or not isinstance(cluster, str):
        raise UsageError("malformed button value")
    if resolve_scenario(scenario).name != scenario or cluster not in deps.config.clusters:
        raise UsageError("unknown scenario or cluster in button value")
    return RunRequest(scenario, cluster, parse_args(scenario, request_tokens(data["a"])))


def handle_action(deps: Deps, body: dict[str, Any], action_id: str) -> None:
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    message = body.get("message") or {}
    container = body.get("container") or {}
    thread = message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    where = Where(
        channel=channel, user=user, thread_ts=thread, response_url=body.get("response_url")
    )
    action: dict[str, Any] = next(
        (a for a in body.get("actions") or () if a.get("action_id") == action_id), {}
    )
    delivery = str(body.get("trigger_id") or action.get("action_ts") or "")
    if delivery and not deps.runs.first_time("action", delivery):
        return  # the same click delivered twice
    try:
        req = parse_value(action.get("value"), deps)
    except UsageError as exc:
        audit_line("refused", rule=f"invalid button value: {exc}", user=user, channel=channel,
                   action=action_id)  # fmt: skip
        deps.metrics.refusals.inc()
        where.tell(deps, messages.forged_button())
        return
    allowed, _ = access.check(deps, req.cluster, channel, user, f"button {action_id}")
    if allowed is False:  # the same answer as a button naming an unknown cluster
        where.tell(deps, messages.forged_button())
        return
    if action_id == COMMANDS_ACTION:
        if allowed is None:
            deps.usergroups.wait_ready(10.0)
            allowed, _ = access.check(deps, req.cluster, channel, user, f"button {action_id}")
            if not allowed:
                where.tell(
                    deps,
                    messages.forged_button() if allowed is False else messages.access_unknown(),
                )
                return
        show_commands(deps, req, where)
        return
    limited(deps, decide_then_run, req, where, fresh=True)
