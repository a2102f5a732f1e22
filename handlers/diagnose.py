"""A diagnosis after the ack, on the bot's executor: post the parent ("running"), get the
report (cache, singleflight, run), post findings as thread replies worst first, update the
parent with the verdict. Everything inside one error boundary: whatever fails, the user gets
a short message with the run id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from bot import messages
from bot.deps import Deps
from bot.inflight import InFlightRun
from bot.logs import current_request_id, new_request_id
from bot.render.blocks import (
    MAX_EVIDENCE_LINES,
    RERUN_ACTION,
    SlackMessage,
    button_value,
    commands_messages,
    parent_message,
    running_message,
    thread_messages,
)
from bot.runs import Outcome, RunFailed, RunRequest, outcome_record
from bot.slack_send import NotInChannel, SlackSendError
from bot.store import RunRecord
from diagnostics.model import Finding, Report

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Where:
    """Where a request came from and where its answer goes."""

    channel: str
    user: str
    thread_ts: str | None = None  # answer inside this thread (mentions in threads, buttons)
    response_url: str | None = None  # ephemeral answers for commands and buttons

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


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]


def _split(deps: Deps, cluster: str, report: Report) -> tuple[Report, list[tuple[Finding, Any]]]:
    """The report without silenced findings, and those findings with their silences."""
    if deps.silences is None or not report.findings:
        return report, []
    try:
        kept, silenced = deps.silences.split(cluster, report.findings)
    except Exception:  # silences are a nicety; Redis down must not sink the answer
        log.warning("silences could not be read; showing every finding", exc_info=True)
        return report, []
    return replace(report, findings=list(kept)), list(silenced)


def _thread(deps: Deps, where: Where, thread_ts: str, report: Report, silenced: list[Any]) -> None:
    replies = thread_messages(report)
    if silenced:
        replies.append(
            SlackMessage(
                text=f"{len(silenced)} silenced", blocks=[messages.silenced_block(silenced)]
            )
        )
    deps.sender.thread(where.channel, thread_ts, replies)
    long = [f for f in report.sorted_findings() if len(f.evidence) > MAX_EVIDENCE_LINES]
    if long:
        content = "\n\n".join(
            f"[{f.severity.value}] {f.code} {f.subject}\n{f.title}\n"
            + "\n".join(f"- {e}" for e in f.evidence)
            for f in long
        )
        try:
            deps.sender.upload(
                where.channel, thread_ts, f"{report.scenario}-{report.cluster}-evidence.txt",
                content, messages.evidence_file_title(report.scenario, report.cluster),
            )  # fmt: skip
        except SlackSendError:
            log.warning("the full-evidence file could not be uploaded", exc_info=True)


def _final_parent(outcome: Outcome, report: Report, where: Where, silenced: int) -> SlackMessage:
    return parent_message(
        report, requester=where.user, run_id=outcome.run_id, silenced=silenced,
        cached_age_s=outcome.age_s if outcome.how == "cached" else None,
    )  # fmt: skip


def run_diagnosis(deps: Deps, req: RunRequest, where: Where, *, fresh: bool = False) -> None:
    """The whole answer to one request; never raises."""
    run_id = current_request_id() or new_request_id()
    parent_ts: str | None = None
    thread_ts: str | None = where.thread_ts
    outcome: Outcome | None = None
    try:
        cached = None if fresh else deps.runs.cached(req)
        if cached is not None:  # answer at once, the verdict in the first message
            report, silenced = _split(deps, req.cluster, cached.report)
            parent_ts = deps.sender.post(
                where.channel, _final_parent(cached, report, where, len(silenced)), where.thread_ts
            )
            _thread(deps, where, where.thread_ts or parent_ts, report, silenced)
            _log_answer(req, cached, where)
            deps.runs.record(outcome_record(cached, req, run_id=run_id, user=where.user,
                                            channel=where.channel, at=deps.clock()))  # fmt: skip
            return
        tracked = _track(deps, req, where, run_id)  # told by another replica if this one dies
        try:
            running = running_message(req.scenario, req.cluster, where.user)
            parent_ts = deps.sender.post(where.channel, running, where.thread_ts)
            thread_ts = where.thread_ts or parent_ts
            if tracked is not None and deps.inflight is not None:
                tracked.parent_ts, tracked.thread_ts = parent_ts, thread_ts
                deps.inflight.update(tracked)
            try:
                outcome = deps.runs.get(req, run_id=run_id, fresh=fresh)
            except RunFailed as exc:
                deps.runs.record(outcome_record(None, req, run_id=exc.run_id, user=where.user,
                                                channel=where.channel, at=deps.clock(), error=exc))  # fmt: skip
                _fail(deps, req, where, parent_ts, thread_ts, exc.run_id, exc.reason)
                return
            report, silenced = _split(deps, req.cluster, outcome.report)
            _thread(deps, where, thread_ts, report, silenced)
            deps.sender.update(
                where.channel, parent_ts, _final_parent(outcome, report, where, len(silenced))
            )
            _log_answer(req, outcome, where)
            deps.runs.record(outcome_record(outcome, req, run_id=run_id, user=where.user,
                                            channel=where.channel, at=deps.clock()))  # fmt: skip
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


def _track(deps: Deps, req: RunRequest, where: Where, run_id: str) -> InFlightRun | None:
    if deps.inflight is None:
        return None
    tracked = InFlightRun(
        run_id=run_id, owner="", scenario=req.scenario, cluster=req.cluster,
        channel=where.channel, user=where.user, arguments=req.args.to_dict(),
        thread_ts=where.thread_ts, response_url=where.response_url, started_at=deps.clock(),
    )  # fmt: skip
    deps.inflight.begin(tracked)
    return tracked


def tell_interrupted(deps: Deps, run: InFlightRun) -> None:
    """A replica died while answering `run` (bot.inflight): say so where the answer was going,
    with its run id and a Re-run button, and record the run as failed. Raises when Slack
    cannot be told (the sweeper retries)."""
    text = messages.run_interrupted(run.run_id)
    value = button_value(Report(cluster=run.cluster, scenario=run.scenario,
                                arguments=run.arguments))  # fmt: skip
    rerun = {"type": "actions", "elements": [{
        "type": "button", "action_id": RERUN_ACTION, "value": value,
        "text": {"type": "plain_text", "text": "Re-run"},
    }]}  # fmt: skip
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
    deps.runs.record(RunRecord(
        run_id=run.run_id, cluster=run.cluster, scenario=run.scenario, arguments=run.arguments,
        user=run.user, channel=run.channel, at=deps.clock(), outcome="failed",
        error=messages.INTERRUPTED,
    ))  # fmt: skip


def _log_answer(req: RunRequest, outcome: Outcome, where: Where) -> None:
    fields = {
        "scenario": req.scenario, "cluster": req.cluster, "user": where.user,
        "channel": where.channel, "run_id": outcome.run_id, "how": outcome.how,
        "verdict": outcome.report.worst.value,
    }  # fmt: skip
    log.info(
        "answered %s on %s (%s)", req.scenario, req.cluster, outcome.how, extra={"fields": fields}
    )


def _fail(
    deps: Deps, req: RunRequest, where: Where, parent_ts: str | None, thread_ts: str | None,
    run_id: str, reason: str,
) -> None:  # fmt: skip
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
    """The Show commands button: every command of the report, in the thread."""
    run_id = current_request_id() or new_request_id()
    try:
        outcome = deps.runs.get(req, run_id=run_id)
        report, _ = _split(deps, req.cluster, outcome.report)
        deps.sender.thread(where.channel, where.thread_ts or "", commands_messages(report))
    except RunFailed as exc:
        _tell_quietly(deps, where, messages.run_failed(exc.run_id, exc.reason))
    except NotInChannel:
        _tell_quietly(deps, where, messages.not_in_channel(deps.settings.command))
    except Exception:
        log.exception("show commands failed")
        _tell_quietly(deps, where, messages.run_failed(run_id, "the commands could not be posted"))
