"""Slack Block Kit primitives and the parent message, through slack_sdk.models, within Slack's
limits. The thread (causes, details, commands) is in bot.render.thread.

The parent is the answer: its `text` (what notifications and screen readers show) and its first
block carry the verdict, the headline and the arguments asked. Limits enforced here, never left
to Slack to reject: 50 blocks per message, 3,000 characters per section text, ~11,000
characters per message in total. A code block is never cut: a split closes the fence and
reopens it in the next section, and a command too long for a section travels as a file.
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

from bot.render.words import asked, duration, problem_counts, slack_date, stale_note
from diagnostics.diagnosis import ensure
from diagnostics.model import Finding, Report, Severity

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_MESSAGE_CHARS = 11000
MAX_EVIDENCE_LINES = 15
MAX_INLINE_COMMAND = 2400  # longer commands go as a file, whole
FENCE = "```"

EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
    Severity.OK: ":large_green_circle:",
}
RERUN_ACTION = "aksdiag_rerun"
COMMANDS_ACTION = "aksdiag_commands"
DETAILS_ACTION = "aksdiag_details"
SILENCE_ACTION = "aksdiag_silence"


@dataclass(frozen=True, slots=True)
class SnippetFile:
    """Content too long for a message (a long command, full evidence): uploaded as a file."""

    filename: str
    content: str
    title: str


@dataclass
class SlackMessage:
    text: str  # the notification / fallback text
    blocks: list[dict[str, Any]] = field(default_factory=list)
    files: list[SnippetFile] = field(default_factory=list)  # uploaded after the message

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def esc(text: str) -> str:
    """Escape Slack's control characters in mrkdwn (user and cluster data)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(text: str) -> list[Block]:
    """Section blocks holding `text`, split on lines under the 3,000 limit. A split inside a
    code block closes the fence in one section and reopens it in the next, so a heredoc stays
    code on both sides. Only a single prose line longer than a section is clipped; code lines
    never are (callers send commands that long as files)."""
    limit = MAX_SECTION - 10
    out: list[Block] = []
    chunk = ""
    in_code = False
    for line in text.split("\n"):
        starts_in_code = in_code
        if line.count(FENCE) % 2:
            in_code = not in_code
        if not starts_in_code and line.count(FENCE) == 0:
            line = _clip(line, limit)
        while len(line) > limit:  # a code line longer than a section: split it, fenced
            head, line = line[: limit - 10], line[limit - 10 :]
            out.append(_section(_close(f"{chunk}\n{head}" if chunk else head)))
            chunk = FENCE
        if chunk and len(chunk) + len(line) + 1 > limit:
            out.append(_section(_close(chunk) if starts_in_code else chunk))
            chunk = FENCE if starts_in_code else ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        out.append(_section(chunk))
    return out


def _close(text: str) -> str:
    return text + f"\n{FENCE}" if text.count(FENCE) % 2 else text


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_close(text)))


def _code(command: str) -> str:
    return FENCE + esc(command).replace(FENCE, "'''") + FENCE


def context_block(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(text, MAX_SECTION))])


Sized = tuple[dict[str, Any], int]  # a block as Slack gets it, and its JSON length
_DIVIDER: Sized = (DividerBlock().to_dict(), len(json.dumps(DividerBlock().to_dict())) + 1)


def _sized(blocks: list[Block]) -> list[Sized]:
    """Each block serialized once: packing then adds lengths instead of re-serializing."""
    out = []
    for b in blocks:
        d = b.to_dict()
        out.append((d, len(json.dumps(d)) + 1))
    return out


def pack(groups: list[list[Block]], title: str, *, dividers: bool = True) -> list[SlackMessage]:
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
            if current and dividers:
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
    """`3 critical, 5 warning`, or `No problems found` (info and ok are not counted)."""
    return problem_counts(report) or "No problems found"


def verdict_words(report: Report) -> str:
    v = report.verdict
    return "No problems found" if v is Severity.OK else v.value.upper()


def button_value(report: Report) -> str:
    return json.dumps(
        {"s": report.scenario, "c": report.cluster, "a": report.arguments}, separators=(",", ":")
    )[:2000]


def parent_text(report: Report) -> str:
    """The notification: verdict, headline, what was asked."""
    report = ensure(report)
    if report.verdict is Severity.OK:
        return f"No problems found — {asked(report)}"
    return f"{report.verdict.value.upper()}: {report.headline} — {asked(report)}"


def parent_message(
    report: Report,
    *,
    requester: str | None = None,
    cached_age_s: float | None = None,
    run_id: str | None = None,
    silenced: int = 0,
    ttl_s: float = 300.0,
    rerun_note: str = "",
) -> SlackMessage:
    """The answer: verdict + headline + what was asked, then one context line (counts, when
    the data is from and how old, cached, not checked, silenced, run id), then the buttons."""
    report = ensure(report)
    verdict = report.verdict
    who = f" · for <@{requester}>" if requester else ""
    head = f"{EMOJI[verdict]} *{esc(report.headline)}*"
    if verdict is not Severity.OK:
        head = f"{EMOJI[verdict]} *{verdict.value.upper()}* · *{esc(report.headline)}*"
    lines = [_clip(head, 1500), f"`{esc(asked(report))}`{who}"]
    if rerun_note:
        lines.append(rerun_note)
    meta = []
    counts = problem_counts(report)
    if counts:
        meta.append(counts)
    if report.data_as_of:
        meta.append(f"data from {slack_date(report.data_as_of)}")
    stale = stale_note(report, ttl_s)
    if stale:
        meta.append(f":warning: {stale}")
    if cached_age_s is not None:
        meta.append(f":recycle: cached {duration(cached_age_s)} ago (Re-run reads it again)")
    if "total" in report.timings_ms:
        meta.append(f"took {report.timings_ms['total'] / 1000:.1f} s")
    if report.unavailable:
        meta.append(f"{len(report.unavailable)} source(s) not checked (see thread)")
    if silenced:
        meta.append(f"{silenced} silenced")
    if run_id:
        meta.append(f"run `{run_id}`")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text="\n".join(lines)))]
    if meta:
        blocks.append(context_block(" · ".join(meta)))
    value = button_value(report)
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(text="Re-run", action_id=RERUN_ACTION, value=value),
                ButtonElement(text="Show commands", action_id=COMMANDS_ACTION, value=value),
            ]
        )
    )
    return SlackMessage(text=parent_text(report), blocks=[b.to_dict() for b in blocks])


def verdict_reply(report: Report) -> SlackMessage:
    """A short threaded message with the verdict, posted when the parent was updated from
    "running" (an update does not notify; a new message does)."""
    report = ensure(report)
    text = parent_text(report)
    emoji = EMOJI[report.verdict]
    return SlackMessage(text=text, blocks=[_section(f"{emoji} {esc(text)}").to_dict()])


def running_message(
    scenario: str, cluster: str, requester: str | None, args: str = ""
) -> SlackMessage:
    who = f" · for <@{requester}>" if requester else ""
    what = " ".join(p for p in (scenario, cluster, args) if p)
    text = f":hourglass_flowing_sand: running `{esc(what)}`{who}"
    return SlackMessage(
        text=f"running {what}",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    )


def finding_blocks(f: Finding, with_commands: bool = True) -> list[Block]:
    """One finding in full (for Details and digests): evidence, why, every step, fingerprint."""
    from bot.render.thread import step_lines

    lines = [f"{EMOJI[f.severity]} *{esc(f.title)}*  `{f.code}`"]
    evidence = list(f.evidence)
    shown = evidence[:MAX_EVIDENCE_LINES]
    lines += [f"• {esc(e)}" for e in shown]
    if len(evidence) > len(shown):
        lines.append(f"_…and {len(evidence) - len(shown)} more lines in the evidence file_")
    if f.cause:
        lines.append(f"_Why:_ {esc(f.cause)}")
    blocks = _sections("\n".join(lines))
    if with_commands and f.remediation:
        steps: list[str] = []
        for i, step in enumerate(f.remediation, 1):
            steps += step_lines(step, i)
        blocks += _sections("\n".join(steps))
    foot = f"fingerprint `{f.fingerprint}` · subject `{esc(f.subject)}`"
    if f.docs:
        foot = f"<{f.docs}|Docs> · {foot}"
    blocks.append(context_block(foot))
    return blocks


def render_slack(report: Report, **parent_kw: Any) -> tuple[SlackMessage, list[SlackMessage]]:
    """(parent message, thread replies) for a finished report."""
    from bot.render.thread import thread_messages

    return parent_message(report, **parent_kw), thread_messages(report)


def report_payload(report: Report, *, where: str = "slack") -> dict[str, Any]:
    """What `--format blocks` prints: the parent and each thread reply, as Slack would get them,
    and the files that would be uploaded with them."""
    from bot.render.thread import thread_messages

    parent = parent_message(report)
    thread = thread_messages(report, where=where)
    out: dict[str, Any] = {"parent": parent.to_dict(), "thread": [m.to_dict() for m in thread]}
    files = [f for m in thread for f in m.files]
    if files:
        out["files"] = [
            {"filename": f.filename, "title": f.title, "content": f.content} for f in files
        ]
    return out
