"""A diagnosis after the ack, on the bot's executor: get the report (cache, singleflight,
run) and post it. An answer ready within `Settings.direct_post_s` (2 s) is posted at once,
verdict first (no "running" message), and so is a run that fails within it (one message: what
was asked, why, the run id, Re-run); a slower one posts "running", then updates it in place and
also posts the verdict as a threaded reply, because an update does not notify. A subject the
user asked about that does not exist is a usage error told to the requester only. Re-run
updates the original parent in place and posts only what changed (handlers.answered keeps what
it shows). Everything inside one error boundary: whatever fails, the user gets a short message
with the run id.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from bot import messages
from bot.deps import Deps
from bot.inflight import InFlightRun
from bot.logs import current_request_id, new_request_id
from bot.render.blocks import (
    RERUN_ACTION,
    SlackMessage,
    button_value,
    parent_message,
    running_message,
    verdict_reply,
)
from bot.render.rerun import rerun_note, rerun_reply
from bot.render.thread import commands_messages, commands_script, thread_messages
from bot.render.words import args_text
from bot.runs import Outcome, RunFailed, RunRequest, outcome_record
from bot.slack_send import NotInChannel, SlackSendError
from bot.store import RunRecord
from diagnostics.checks import default_registry
from diagnostics.diagnosis import Link, apply, missing_subject
from diagnostics.model import Finding, Report
from handlers import answered

log = logging.getLogger(__name__)
MAX_EPHEMERAL = 4  # response_url takes 5 answers; beyond 4 messages, commands go as a file


@dataclass(frozen=True, slots=True)
class Where:
    """Where a request came from and where its answer goes."""

    channel: str
    user: str
    thread_ts: str | None = None  # answer inside this thread (mentions in threads, buttons)
    response_url: str | None = None  # ephemeral answers for commands and buttons
    parent_ts: str | None = None  # Re-run: the answer to update in place

    def tell(self, deps: Deps, text: str, *, in_channel: bool = False) -> None:
        """An answer for the requester only (or the channel, `in_channel`)."""
        if self.response_url and deps.sender.respond(
            self.response_url, text, in_channel=in_channel
        ):
            return
        if in_channel:
            deps.sender.post(
                self.channel, SlackMessage(text=text, blocks=_text_blocks(text)), self.thread_ts
            )
        else:
            deps.sender.ephemeral(self.channel, self.user, text, self.thread_ts)

    def tell_blocks(self, deps: Deps, replies: list[SlackMessage]) -> None:
        """Several messages for the requester only (Details, Show commands)."""
        for m in replies:
            if self.response_url and deps.sender.respond(
                self.response_url, m.text, blocks=m.blocks
            ):
                continue
            deps.sender.ephemeral(self.channel, self.user, m.text, self.thread_ts, m.blocks)


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]


def _split(deps: Deps, cluster: str, report: Report) -> tuple[Report, list[tuple[Finding, Any]]]:
    """The report without silenced findings, and those findings with their silences."""
    if not report.findings:
        return report, []
    try:
        kept, silenced = deps.silences.split(cluster, report.findings)
    except Exception:  # silences are a nicety; Redis down must not sink the answer
        log.warning("silences could not be read; showing every finding", exc_info=True)
        return report, []
    if not silenced:
        return report, []
    trimmed = replace(report, findings=list(kept), causes=[], headline="")
    return apply(trimmed, _links()), list(silenced)


@functools.cache
def _links() -> tuple[Link, ...]:
    """The causal links the checks declare (to diagnose again without silenced findings)."""
    return tuple(default_registry().links())


def _thread(deps: Deps, where: Where, thread_ts: str, report: Report, silenced: list[Any]) -> None:
    replies = thread_messages(report)
    if silenced:
        replies.append(
            SlackMessage(
                text=f"{len(silenced)} silenced", blocks=[messages.silenced_block(silenced)]
            )
        )
    deps.sender.thread(where.channel, thread_ts, replies)


def _final_parent(
    deps: Deps, outcome: Outcome, report: Report, where: Where, silenced: int, note: str = ""
) -> SlackMessage:
    return parent_message(
        report,
        requester=where.user,
        run_id=outcome.run_id,
        silenced=silenced,
        cached_age_s=outcome.age_s if outcome.how == "cached" else None,
        ttl_s=deps.config.cache_ttl_seconds,
        rerun_note=note,
    )


def _in_background(deps: Deps, req: RunRequest, run_id: str, fresh: bool) -> Future[Outcome]:
    """`deps.runs.get` on a thread of its own, so the answer can be awaited for a while."""
    future: Future[Outcome] = Future()
    ctx = contextvars.copy_context()

    def work() -> None:
        try:
            future.set_result(deps.runs.get(req, run_id=run_id, fresh=fresh))
        except BaseException as exc:  # handed to the waiting thread
            future.set_exception(exc)

    threading.Thread(target=ctx.run, args=(work,), name="aksdiag-answer", daemon=True).start()
    return future


def _usage_error(deps: Deps, where: Where, report: Report) -> bool:
    """Tell the requester privately when the subject they asked about does not exist."""
    missing = missing_subject(report)
    if missing is None:
        return False
    hints = [e for e in missing.evidence if e.startswith(("did you mean", "a service", "nodes:"))]
    text = f":grey_question: {missing.title}" + (f" ({'; '.join(hints)})" if hints else "")
    _tell_quietly(deps, where, text)
    return True


def run_diagnosis(deps: Deps, req: RunRequest, where: Where, *, fresh: bool = False) -> None:
    """The whole answer to one request; never raises."""
    run_id = current_request_id() or new_request_id()
    parent_ts: str | None = None
    thread_ts: str | None = where.thread_ts
    try:
        if where.parent_ts:
            _rerun(deps, req, where, run_id)
            return
        tracked = _track(deps, req, where, run_id)  # told by another replica if this one dies
        try:
            pending = _in_background(deps, req, run_id, fresh)
            try:
                outcome: Outcome | None = pending.result(timeout=deps.settings.direct_post_s)
            except FutureTimeout:
                outcome = None
            except RunFailed as exc:  # known within the window: the failure is the answer
                _record_failure(deps, req, where, exc)
                _fail_directly(deps, req, where, exc)
                return
            if outcome is None:
                what = args_text(req.args.to_dict())
                running = running_message(req.scenario, req.cluster, where.user, what)
                parent_ts = deps.sender.post(where.channel, running, where.thread_ts)
                thread_ts = where.thread_ts or parent_ts
                if tracked is not None and deps.inflight is not None:
                    tracked.parent_ts, tracked.thread_ts = parent_ts, thread_ts
                    deps.inflight.update(tracked)
                try:
                    outcome = pending.result()
                except RunFailed as exc:
                    _record_failure(deps, req, where, exc)
                    _fail(deps, req, where, parent_ts, thread_ts, exc.run_id, exc.reason)
                    return
            report, silenced = _split(deps, req.cluster, outcome.report)
            if _usage_error(deps, where, report):
                if parent_ts:
                    gone = messages.usage_told_privately(req.scenario, req.cluster)
                    deps.sender.update(
                        where.channel, parent_ts, SlackMessage(gone, _text_blocks(gone))
                    )
            else:
                final = _final_parent(deps, outcome, report, where, len(silenced))
                earlier = (
                    answered.earlier(deps, where.channel, req)
                    if outcome.how == "cached" and not where.thread_ts
                    else None
                )
                if parent_ts is None:  # fast: the answer is the first message
                    parent_ts = deps.sender.post(where.channel, final, where.thread_ts)
                    _keep_shown(deps, where, parent_ts, report)
                    thread_ts = where.thread_ts or parent_ts
                    if earlier is not None:  # a cached answer never re-posts a whole thread
                        link = deps.sender.permalink(where.channel, earlier[0])
                        text = messages.same_answer(link, earlier[1])
                        deps.sender.post(
                            where.channel, SlackMessage(text, _text_blocks(text)), thread_ts
                        )
                    else:
                        _thread(deps, where, thread_ts, report, silenced)
                        _remember(deps, where, req, thread_ts)
                else:  # slow: update "running", thread, and a verdict reply that notifies
                    deps.sender.update(where.channel, parent_ts, final)
                    _keep_shown(deps, where, parent_ts, report)
                    _thread(deps, where, thread_ts or parent_ts, report, silenced)
                    _remember(deps, where, req, thread_ts or parent_ts)
                    deps.sender.post(where.channel, verdict_reply(report), thread_ts)
            _log_answer(req, outcome, where)
            deps.runs.record(
                outcome_record(
                    outcome,
                    req,
                    run_id=run_id,
                    user=where.user,
                    channel=where.channel,
                    at=deps.clock(),
                )
            )
        finally:
            if tracked is not None and deps.inflight is not None:
                deps.inflight.end(tracked.run_id)
    except NotInChannel:
        _tell_quietly(deps, where, messages.not_in_channel(deps.settings.command))
    except Exception as exc:
        log.exception("answering %s on %s failed", req.scenario, req.cluster)
        reason = f"{exc}" if isinstance(exc, SlackSendError) else f"{type(exc).__name__}"
        _fail(
            deps,
            req,
            where,
            parent_ts,
            thread_ts,
            run_id,
            f"the answer could not be posted ({reason})",
        )


def _rerun(deps: Deps, req: RunRequest, where: Where, run_id: str) -> None:
    """Re-run: read the cluster again, update the original parent in place ("re-run by @x at
    …: resolved …, still …, new …") and post only the difference in its thread."""
    parent_ts = where.parent_ts or ""
    before = answered.shown_before(deps, where.channel, parent_ts, req)
    try:
        outcome = deps.runs.get(req, run_id=run_id, fresh=True)
    except RunFailed as exc:
        _record_failure(deps, req, where, exc)
        _fail(deps, req, where, None, parent_ts, exc.run_id, exc.reason)
        return
    report, silenced = _split(deps, req.cluster, outcome.report)
    note = rerun_note(before, report, where.user, deps.clock())
    deps.sender.update(
        where.channel, parent_ts, _final_parent(deps, outcome, report, where, len(silenced), note)
    )
    _keep_shown(deps, where, parent_ts, report)
    deps.sender.thread(where.channel, parent_ts, rerun_reply(before, report, where.user))
    _log_answer(req, outcome, where)
    deps.runs.record(
        outcome_record(
            outcome, req, run_id=run_id, user=where.user, channel=where.channel, at=deps.clock()
        )
    )


def _record_failure(deps: Deps, req: RunRequest, where: Where, exc: RunFailed) -> None:
    record = outcome_record(
        None,
        req,
        run_id=exc.run_id,
        user=where.user,
        channel=where.channel,
        at=deps.clock(),
        error=exc,
    )
    deps.runs.record(record)


def _fail_directly(deps: Deps, req: RunRequest, where: Where, exc: RunFailed) -> None:
    """A run that failed within the direct-post window: one message says so (what was asked,
    why, the run id) with a Re-run button, instead of "running" and then "failed"."""
    what = " ".join(p for p in (req.scenario, req.cluster, args_text(req.args.to_dict())) if p)
    head = f":x: *Failed* · `{what}` · for <@{where.user}>"
    text = f"{head}\n{messages.run_failed(exc.run_id, exc.reason).removeprefix(':x: ')}"
    blocks = [*_text_blocks(text), _rerun_actions(req.scenario, req.cluster, req.args.to_dict())]
    notice = f"failed {what}: {exc.reason}"
    deps.sender.post(where.channel, SlackMessage(text=notice, blocks=blocks), where.thread_ts)


def _rerun_actions(scenario: str, cluster: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An actions block with only the Re-run button (answers that have no report)."""
    value = button_value(Report(cluster=cluster, scenario=scenario, arguments=arguments))
    button = {
        "type": "button",
        "action_id": RERUN_ACTION,
        "value": value,
        "text": {"type": "plain_text", "text": "Re-run"},
    }
    return {"type": "actions", "elements": [button]}


def _remember(deps: Deps, where: Where, req: RunRequest, thread_ts: str) -> None:
    if not where.thread_ts:  # answers inside someone's thread are not pointed to
        answered.remember(deps, where.channel, req, thread_ts)


def _keep_shown(deps: Deps, where: Where, parent_ts: str | None, report: Report) -> None:
    if parent_ts and (where.parent_ts or not where.thread_ts):  # re-run in place: top level
        answered.keep_shown(deps, where.channel, parent_ts, report)


def _track(deps: Deps, req: RunRequest, where: Where, run_id: str) -> InFlightRun | None:
    if deps.inflight is None:
        return None
    tracked = InFlightRun(
        run_id=run_id,
        owner="",
        scenario=req.scenario,
        cluster=req.cluster,
        channel=where.channel,
        user=where.user,
        arguments=req.args.to_dict(),
        thread_ts=where.thread_ts,
        response_url=where.response_url,
        started_at=deps.clock(),
    )
    deps.inflight.begin(tracked)
    return tracked


def tell_interrupted(deps: Deps, run: InFlightRun) -> None:
    """A replica died while answering `run` (bot.inflight): say so where the answer was going,
    with its run id and a Re-run button, and record the run as failed. Raises when Slack
    cannot be told (the sweeper retries)."""
    text = messages.run_interrupted(run.run_id)
    rerun = _rerun_actions(run.scenario, run.cluster, run.arguments)
    where = Where(run.channel, run.user, run.thread_ts, run.response_url)
    if run.thread_ts:
        blocks = [*_text_blocks(text), rerun]
        deps.sender.post(run.channel, SlackMessage(text=text, blocks=blocks), run.thread_ts)
    else:
        where.tell(deps, text)
    if run.parent_ts:
        failed = messages.run_failed_parent(run.scenario, run.cluster, run.user)
        deps.sender.update(
            run.channel,
            run.parent_ts,
            SlackMessage(text=failed, blocks=[*_text_blocks(failed), rerun]),
        )
    deps.runs.record(
        RunRecord(
            run_id=run.run_id,
            cluster=run.cluster,
            scenario=run.scenario,
            arguments=run.arguments,
            user=run.user,
            channel=run.channel,
            at=deps.clock(),
            outcome="failed",
            error=messages.INTERRUPTED,
        )
    )


def _log_answer(req: RunRequest, outcome: Outcome, where: Where) -> None:
    fields = {
        "scenario": req.scenario,
        "cluster": req.cluster,
        "user": where.user,
        "channel": where.channel,
        "run_id": outcome.run_id,
        "how": outcome.how,
        "verdict": outcome.report.worst.value,
    }
    log.info(
        "answered %s on %s (%s)", req.scenario, req.cluster, outcome.how, extra={"fields": fields}
    )


def _fail(
    deps: Deps,
    req: RunRequest,
    where: Where,
    parent_ts: str | None,
    thread_ts: str | None,
    run_id: str,
    reason: str,
) -> None:
    """A short failure message in the thread (or to the requester when there is no thread)."""
    text = messages.run_failed(run_id, reason)
    try:
        if thread_ts:
            deps.sender.post(
                where.channel, SlackMessage(text=text, blocks=_text_blocks(text)), thread_ts
            )
        else:
            where.tell(deps, text)
        if parent_ts:
            failed = messages.run_failed_parent(req.scenario, req.cluster, where.user)
            deps.sender.update(
                where.channel, parent_ts, SlackMessage(text=failed, blocks=_text_blocks(failed))
            )
    except Exception:
        log.exception("could not tell the user that run %s failed", run_id)
        _tell_quietly(deps, where, text)


def _tell_quietly(deps: Deps, where: Where, text: str) -> None:
    try:
        where.tell(deps, text)
    except Exception:
        log.exception("could not answer the user")


def show_commands(deps: Deps, req: RunRequest, where: Where) -> None:
    """The Show commands button: every command with its step's text, for the requester only
    (ephemeral); when that is more than a few messages, a commented .sh file in the thread."""
    run_id = current_request_id() or new_request_id()
    try:
        outcome = deps.runs.get(req, run_id=run_id)
        report, _ = _split(deps, req.cluster, outcome.report)
        replies = commands_messages(report)
        if len(replies) <= MAX_EPHEMERAL:
            where.tell_blocks(deps, replies)
            return
        name = f"aksdiag-{report.scenario}-{report.cluster}-commands.sh"
        deps.sender.upload(
            where.channel,
            where.thread_ts,
            name,
            commands_script(report),
            messages.commands_file_title(report.scenario, report.cluster),
        )
    except RunFailed as exc:
        _tell_quietly(deps, where, messages.run_failed(exc.run_id, exc.reason))
    except NotInChannel:
        _tell_quietly(deps, where, messages.not_in_channel(deps.settings.command))
    except Exception:
        log.exception("show commands failed")
        _tell_quietly(deps, where, messages.run_failed(run_id, "the commands could not be posted"))
