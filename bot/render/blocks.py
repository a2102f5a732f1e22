"""Slack Block Kit rendering of a report, through slack_sdk.models, within Slack's limits.

A report becomes a parent message (verdict, counts, freshness, buttons) and thread replies
(findings, worst first). Limits enforced here, never left to Slack to reject: 50 blocks per
message, 3,000 characters per section text, ~11,000 characters per message in total.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    MarkdownTextObject,
    SectionBlock,
)

from diagnostics.model import Finding, Report, Severity, Unavailable

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_MESSAGE_CHARS = 11000
MAX_EVIDENCE_LINES = 15

EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
    Severity.OK: ":large_green_circle:",
}
RERUN_ACTION = "aksdiag_rerun"
COMMANDS_ACTION = "aksdiag_commands"


@dataclass
class SlackMessage:
    text: str  # the notification / fallback text
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def esc(text: str) -> str:
    """Escape Slack's control characters in mrkdwn (user and cluster data)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(text: str) -> list[Block]:
    """One or more section blocks holding `text`, split on lines under the 3,000 limit."""
    out: list[Block] = []
    chunk = ""
    for line in text.split("\n"):
        line = _clip(line, MAX_SECTION - 10)
        if len(chunk) + len(line) + 1 > MAX_SECTION - 10:
            out.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        out.append(_section(chunk))
    return out


def _section(text: str) -> SectionBlock:
    if text.count("```") % 2:
        text += "\n```"
    return SectionBlock(text=MarkdownTextObject(text=text))


def _code(command: str) -> str:
    return "```" + esc(command).replace("```", "'''") + "```"


def finding_blocks(f: Finding, with_commands: bool = True) -> list[Block]:
    lines = [f"{EMOJI[f.severity]} *{f.severity.value.upper()}* `{f.code}`\n*{esc(f.title)}*"]
    evidence = list(f.evidence)
    shown = evidence[:MAX_EVIDENCE_LINES]
    lines += [f"• {esc(e)}" for e in shown]
    if len(evidence) > len(shown):
        lines.append(f"_…and {len(evidence) - len(shown)} more (see `--format json`)_")
    if f.cause:
        lines.append(f"_Why:_ {esc(f.cause)}")
    blocks = _sections("\n".join(lines))
    if with_commands and f.remediation:
        steps = []
        for i, step in enumerate(f.remediation, 1):
            steps.append(f"{i}. {esc(step.text)}")
            if step.command:
                steps.append(_code(step.command))
        blocks += _sections("\n".join(steps))
    if f.docs:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text=f"<{f.docs}|Docs> · fingerprint `{f.fingerprint}`")
                ]
            )
        )
    return blocks


Sized = tuple[dict[str, Any], int]  # a block as Slack gets it, and its JSON length
_DIVIDER: Sized = (DividerBlock().to_dict(), len(json.dumps(DividerBlock().to_dict())) + 1)


def _sized(blocks: list[Block]) -> list[Sized]:
    """Each block serialized once: packing then adds lengths instead of re-serializing."""
    out = []
    for b in blocks:
        d = b.to_dict()
        out.append((d, len(json.dumps(d)) + 1))
    return out


def pack(groups: list[list[Block]], title: str) -> list[SlackMessage]:
    """Pack groups of blocks into messages without splitting a group unless it alone is over
    the limits."""
    messages: list[SlackMessage] = []
    current: list[Sized] = []
    size = 2
    for group in groups:
        for piece in _split_group(_sized(group)):
            piece_size = sum(n for _, n in piece)
            if current and (
                len(current) + len(piece) + 1 > MAX_BLOCKS
                or size + piece_size + _DIVIDER[1] > MAX_MESSAGE_CHARS
            ):
                messages.append(_message_of(current, title))
                current, size = [], 2
            if current:
                current.append(_DIVIDER)
                size += _DIVIDER[1]
            current.extend(piece)
            size += piece_size
    if current:
        messages.append(_message_of(current, title))
    return messages


def _split_group(group: list[Sized]) -> list[list[Sized]]:
    pieces: list[list[Sized]] = [[]]
    size = 2
    for block in group:
        if pieces[-1] and (
            len(pieces[-1]) + 1 >= MAX_BLOCKS or size + block[1] > MAX_MESSAGE_CHARS
        ):
            pieces.append([])
            size = 2
        pieces[-1].append(block)
        size += block[1]
    return pieces


def _message_of(blocks: list[Sized], title: str) -> SlackMessage:
    return SlackMessage(text=title, blocks=[d for d, _ in blocks])


def summary_line(report: Report) -> str:
    counts = report.counts()
    parts = [f"{counts[s.value]} {s.value}" for s in Severity if counts[s.value]]
    return ", ".join(parts) or "no findings"


def button_value(report: Report) -> str:
    return json.dumps(
        {"s": report.scenario, "c": report.cluster, "a": report.arguments}, separators=(",", ":")
    )[:2000]


def parent_message(
    report: Report,
    *,
    requester: str | None = None,
    cached_age_s: float | None = None,
    run_id: str | None = None,
    silenced: int = 0,
) -> SlackMessage:
    worst = report.worst
    who = f" for <@{requester}>" if requester else ""
    title = f"`{report.scenario}` on *{esc(report.cluster)}*{who}"
    verdict = f"{EMOJI[worst]} *{worst.value.upper()}* — {summary_line(report)}"
    meta = []
    if "total" in report.timings_ms:
        meta.append(f"took {report.timings_ms['total'] / 1000:.1f}s")
    if report.data_as_of:
        meta.append(f"data as of {report.data_as_of}")
    if cached_age_s is not None:
        meta.append(f":recycle: cached answer, {int(cached_age_s)}s old — Re-run for fresh data")
    if report.unavailable:
        meta.append(f"{len(report.unavailable)} source(s) not checked")
    if silenced:
        meta.append(f"{silenced} silenced")
    if run_id:
        meta.append(f"run `{run_id}`")
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=_clip(f"{title}\n{verdict}", MAX_SECTION))),
    ]
    if meta:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=_clip(" · ".join(meta), MAX_SECTION))])
        )
    value = button_value(report)
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(text="Re-run", action_id=RERUN_ACTION, value=value),
                ButtonElement(text="Show commands", action_id=COMMANDS_ACTION, value=value),
            ]
        )
    )
    text = f"{report.scenario} on {report.cluster}: {worst.value.upper()} ({summary_line(report)})"
    return SlackMessage(text=text, blocks=[b.to_dict() for b in blocks])


def running_message(scenario: str, cluster: str, requester: str | None) -> SlackMessage:
    who = f" for <@{requester}>" if requester else ""
    text = f"`{scenario}` on *{esc(cluster)}*{who} — :hourglass_flowing_sand: running"
    return SlackMessage(
        text=f"{scenario} on {cluster}: running",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )


def _unavailable_blocks(items: list[Unavailable]) -> list[Block]:
    lines = ["*Not checked*"] + [
        f"• `{esc(u.source)}`: {esc(u.reason)}"
        + (f" _({esc(', '.join(u.checks))})_" if u.checks else "")
        for u in items
    ]
    return _sections("\n".join(lines))


def thread_messages(report: Report, *, with_commands: bool = True) -> list[SlackMessage]:
    title = f"{report.scenario} on {report.cluster}: findings"
    groups = [finding_blocks(f, with_commands) for f in report.sorted_findings()]
    if not groups:
        groups = [[_section(":white_check_mark: No findings: nothing wrong was seen.")]]
    if report.unavailable:
        groups.append(_unavailable_blocks(report.unavailable))
    return pack(groups, title)


def commands_messages(report: Report) -> list[SlackMessage]:
    """Every command of the report, by finding, for the Show commands button."""
    groups = []
    for f in report.sorted_findings():
        cmds = [s.command for s in f.remediation if s.command]
        if cmds:
            groups.append(
                _sections(f"`{f.code}` {esc(f.title)}\n" + "\n".join(_code(c) for c in cmds))
            )
    if not groups:
        groups = [[_section("No commands: nothing to fix.")]]
    return pack(groups, f"commands for {report.scenario} on {report.cluster}")


def render_slack(report: Report, **parent_kw: Any) -> tuple[SlackMessage, list[SlackMessage]]:
    """(parent message, thread replies) for a finished report."""
    return parent_message(report, **parent_kw), thread_messages(report)


def report_payload(report: Report) -> dict[str, Any]:
    """What `--format blocks` prints: the parent and each thread reply, as Slack would get them."""
    parent, thread = render_slack(report)
    return {"parent": parent.to_dict(), "thread": [m.to_dict() for m in thread]}
