"""The answer's buttons: Re-run (fresh, updating the answer in place), Show commands (for the
requester only), and on each cause Details (its findings in full, for the requester only) and
Silence (a finding, for 24 h).

A button's `value` is data from the client, so it is validated as if typed: the scenario, the
cluster, the arguments, and the clicking user's access to that cluster in that channel. A
forged value (another cluster, unknown keys, bad arguments) runs nothing and is audited. User
groups are awaited only when the cluster's `allow` block uses them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App

from bot import messages
from bot.deps import Deps
from bot.logs import audit_line, current_request_id, new_request_id, request_context
from bot.render.blocks import COMMANDS_ACTION, DETAILS_ACTION, RERUN_ACTION, SILENCE_ACTION
from bot.render.thread import details_messages
from bot.render.words import readable_subject
from bot.runs import RunFailed, RunRequest
from diagnostics.scenarios import UsageError, parse_args, resolve_scenario
from handlers import access
from handlers.commands import limited
from handlers.diagnose import Where, run_diagnosis, show_commands
from handlers.parse import request_tokens

log = logging.getLogger(__name__)
MAX_VALUE = 2000
SILENCE_S = 86400
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def register(app: App, deps: Deps) -> None:
    for action_id in (RERUN_ACTION, COMMANDS_ACTION, DETAILS_ACTION, SILENCE_ACTION):
        # Details and Silence repeat once per cause: their ids carry a suffix (`-<fingerprint>`).
        pattern = re.compile(rf"^{action_id}(-[0-9a-f]+)?$")
        app.action(pattern)(_listener(deps, action_id))


def _listener(deps: Deps, action_id: str) -> Any:
    def on_action(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        with request_context():
            deps.submit(handle_action, deps, body, action_id)

    return on_action


def parse_value(value: object, deps: Deps, extra: frozenset[str] = frozenset()) -> RunRequest:
    """A button value -> a request, with the same checks as typed text."""
    data = _load(value, extra)
    scenario, cluster = data["s"], data["c"]
    if not isinstance(scenario, str) or not isinstance(cluster, str):
        raise UsageError("malformed button value")
    if resolve_scenario(scenario).name != scenario or cluster not in deps.config.clusters:
        raise UsageError("unknown scenario or cluster in button value")
    return RunRequest(scenario, cluster, parse_args(scenario, request_tokens(data["a"])))


def _load(value: object, extra: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        raise UsageError("malformed button value")
    try:
        data = json.loads(value)
    except ValueError:
        raise UsageError("malformed button value") from None
    if not isinstance(data, dict) or set(data) != {"s", "c", "a"} | extra:
        raise UsageError("malformed button value")
    return data


def _fingerprint(data: dict[str, Any]) -> str:
    fp = data.get("f")
    if not isinstance(fp, str) or not _FINGERPRINT.match(fp):
        raise UsageError("malformed button value")
    return fp


def _value_of(action_id: str, action: dict[str, Any], body: dict[str, Any]) -> tuple[Any, str]:
    """(the request's value, the finding fingerprint or '') of a click. Silence is a select:
    its option is a fingerprint, the request is the Details button's value beside it."""
    if action_id != SILENCE_ACTION:
        value = action.get("value")
        fp = _fingerprint(_load(value, frozenset({"f"}))) if action_id == DETAILS_ACTION else ""
        return value, fp
    fp = str((action.get("selected_option") or {}).get("value", ""))
    if not _FINGERPRINT.match(fp):
        raise UsageError("malformed button value")
    block: dict[str, Any] = next(
        (
            b
            for b in (body.get("message") or {}).get("blocks") or ()
            if b.get("block_id") == action.get("block_id")
        ),
        {},
    )
    details: dict[str, Any] = next(
        (
            e
            for e in block.get("elements") or ()
            if str(e.get("action_id", "")).startswith(DETAILS_ACTION)
        ),
        {},
    )
    return details.get("value"), fp


def handle_action(deps: Deps, body: dict[str, Any], action_id: str) -> None:
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    message = body.get("message") or {}
    container = body.get("container") or {}
    thread = message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    # Re-run on a top-level answer updates that answer in place.
    parent = (
        message.get("ts") if action_id == RERUN_ACTION and not message.get("thread_ts") else None
    )
    where = Where(
        channel=channel,
        user=user,
        thread_ts=thread,
        response_url=body.get("response_url"),
        parent_ts=parent,
    )
    action: dict[str, Any] = next(
        (a for a in body.get("actions") or () if str(a.get("action_id", "")).startswith(action_id)),
        {},
    )
    delivery = str(body.get("trigger_id") or action.get("action_ts") or "")
    if delivery and not deps.runs.first_time("action", delivery):
        return  # the same click delivered twice
    try:
        value, fingerprint = _value_of(action_id, action, body)
        extra = frozenset({"f"}) if action_id in (DETAILS_ACTION, SILENCE_ACTION) else frozenset()
        req = parse_value(value, deps, extra)
    except UsageError as exc:
        audit_line(
            "refused",
            rule=f"invalid button value: {exc}",
            user=user,
            channel=channel,
            action=action_id,
        )
        deps.metrics.refusals.inc()
        where.tell(deps, messages.forged_button())
        return
    allowed, _rule = access.check(deps, req.cluster, channel, user, f"button {action_id}")
    if allowed is None:  # only when the cluster's allow block names user groups
        deps.usergroups.wait_ready(10.0)
        allowed, _rule = access.check(deps, req.cluster, channel, user, f"button {action_id}")
    if not allowed:  # the same answer as a button naming an unknown cluster
        where.tell(
            deps, messages.forged_button() if allowed is False else messages.access_unknown()
        )
        return
    if action_id == COMMANDS_ACTION:
        show_commands(deps, req, where)
    elif action_id == DETAILS_ACTION:
        _details(deps, req, where, fingerprint)
    elif action_id == SILENCE_ACTION:
        _silence(deps, req, where, fingerprint)
    else:
        limited(deps, run_diagnosis, req, where, fresh=True)


def _details(deps: Deps, req: RunRequest, where: Where, fingerprint: str) -> None:
    """A cause's findings in full (every evidence line, step and fingerprint), privately."""
    run_id = current_request_id() or new_request_id()
    try:
        outcome = deps.runs.get(req, run_id=run_id)
        where.tell_blocks(deps, details_messages(outcome.report, fingerprint)[:4])
    except RunFailed as exc:
        where.tell(deps, messages.run_failed(exc.run_id, exc.reason))
    except Exception:
        log.exception("details failed")
        where.tell(deps, messages.run_failed(run_id, "the details could not be shown"))


def _silence(deps: Deps, req: RunRequest, where: Where, fingerprint: str) -> None:
    """Silence one finding (its code on its subject) for 24 hours, from the cause's menu."""
    run_id = current_request_id() or new_request_id()
    try:
        outcome = deps.runs.get(req, run_id=run_id)
        finding = outcome.report.by_fingerprint().get(fingerprint)
        if finding is None:
            where.tell(deps, "That finding is no longer reported: nothing to silence.")
            return
        reason = f"silenced from the answer's menu by {where.user}"
        silence = deps.silences.add(
            req.cluster, finding.code, finding.subject, SILENCE_S, reason, where.user
        )
        text = messages.silenced_from_button(
            finding.code, readable_subject(finding.subject), silence.until
        )
        where.tell(deps, text)
    except RunFailed as exc:
        where.tell(deps, messages.run_failed(exc.run_id, exc.reason))
    except Exception:
        log.exception("silence failed")
        where.tell(deps, messages.silences_unavailable())
