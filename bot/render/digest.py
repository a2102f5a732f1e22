"""Pure renderers of a health digest: what the digest found (`DigestView`) in, Slack messages
or terminal output out. No I/O here; `bot.digest` gathers the data and sends.

The parent message is what people read at 8 in the morning: what is new and what is resolved
since the previous digest first, then one line per cluster, worst first (verdict, counts, how old
the data is, flagged when older than the cache TTL), clusters that could not be read named as
such, and how much was left out (below the digest's minimum severity, silenced). The thread has
one line per finding, cluster after cluster, worst first (the full answer is one `/aksdiag health
CLUSTER` away); when nothing changed since the previous digest there is no thread at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.text import Text
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject

from bot.render.blocks import (
    EMOJI,
    SlackMessage,
    _clip,
    _sections,
    esc,
    pack,
)
from bot.render.text import STYLE
from bot.render.words import epoch, readable_subject
from bot.silences import Silence, format_duration
from diagnostics.model import Finding, Report, Severity

MAX_LISTED = 10  # new / resolved lines in the parent before "…and N more"
CLUSTER_LINES_BUDGET = 5000  # characters of per-cluster lines in the parent
UNREADABLE = ":warning:"
GREEN = ":large_green_circle:"


@dataclass(frozen=True, slots=True)
class PastFinding:
    """A finding as the previous digest kept it (enough to say it is resolved)."""

    cluster: str
    code: str
    severity: Severity
    title: str
    subject: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ClusterDigest:
    """One cluster in one digest: what is shown, what was left out and why, what changed."""

    alias: str
    report: Report | None = None
    error: str | None = None  # set when the cluster could not be read
    shown: tuple[Finding, ...] = ()
    silenced: tuple[tuple[Finding, Silence], ...] = ()
    below: int = 0  # findings under the digest's minimum severity
    new: tuple[Finding, ...] = ()
    resolved: tuple[PastFinding, ...] = ()
    silences_changed: bool = False  # a finding was silenced (or unsilenced) since the last one

    @property
    def readable(self) -> bool:
        return self.error is None

    @property
    def worst(self) -> Severity:
        return min((f.severity for f in self.shown), key=lambda s: s.rank, default=Severity.OK)


@dataclass(frozen=True, slots=True)
class DigestView:
    """Everything a digest message says, already decided."""

    name: str
    timezone: str
    min_severity: Severity
    at: float  # the scheduled time, or when it was asked for
    now: float  # for data ages and silence ends
    clusters: tuple[ClusterDigest, ...] = ()
    previous_at: float | None = None  # None: the first digest of this name
    requested_by: str | None = None
    stale_after_s: float = 300.0  # data older than this (the cache TTL) is flagged

    @property
    def ranked(self) -> list[ClusterDigest]:
        """Worst cluster first: critical, warning, could not be read, then all clear."""

        def key(c: ClusterDigest) -> tuple[int, int, str]:
            if not c.readable:
                return (2, 0, c.alias)
            if not c.shown:
                return (3, 0, c.alias)
            return (0 if c.worst is Severity.CRITICAL else 1, -len(c.shown), c.alias)

        return sorted(self.clusters, key=key)

    @property
    def new(self) -> list[tuple[str, Finding]]:
        return [(c.alias, f) for c in self.clusters for f in c.new]

    @property
    def resolved(self) -> list[PastFinding]:
        return [p for c in self.clusters for p in c.resolved]

    @property
    def silenced_count(self) -> int:
        return sum(len(c.silenced) for c in self.clusters)

    @property
    def below_count(self) -> int:
        return sum(c.below for c in self.clusters)

    @property
    def unreadable(self) -> list[ClusterDigest]:
        return [c for c in self.clusters if not c.readable]

    @property
    def green(self) -> bool:
        """Every cluster read, nothing at or above the minimum severity left unsilenced."""
        return all(c.readable and not c.shown for c in self.clusters)

    @property
    def changed(self) -> bool:
        return (
            self.previous_at is None
            or bool(self.new or self.resolved)
            or any(c.silences_changed for c in self.clusters)
        )


# Shared wording ------------------------------------------------------------------------------


def when(epoch: float, tz: str) -> str:
    """`Fri 20 Nov 08:00 Europe/Lisbon`."""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%a %d %b %H:%M ") + tz


def age(iso: str | None, now: float) -> str:
    if not iso:
        return "data time unknown"
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return f"data as of {iso}"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = now - then.timestamp()
    if seconds < 90:
        return "data fresh"
    return f"data {format_duration(seconds)} old"


def counts(findings: Sequence[Finding]) -> str:
    tally = {s: 0 for s in Severity}
    for f in findings:
        tally[f.severity] += 1
    return ", ".join(f"{n} {s.value}" for s, n in tally.items() if n)


def silence_line(silence: Silence, now: float) -> str:
    """`silenced by <@U1> for 2h more: reason` (mrkdwn), for digests and answers alike."""
    left = format_duration(silence.until - now)
    return f"silenced by <@{silence.created_by}> for {left} more: {esc(silence.reason)}"


def _title(view: DigestView) -> str:
    stamp = when(view.at, view.timezone)
    who = f" for <@{view.requested_by}>" if view.requested_by else ""
    return f"*Health digest `{esc(view.name)}`* · {stamp}{who}"


def _stale(c: ClusterDigest, now: float, stale_after_s: float) -> bool:
    data = epoch(c.report.data_as_of) if c.report else None
    return data is not None and now - data > stale_after_s


def _cluster_line(c: ClusterDigest, now: float, stale_after_s: float = 300.0) -> str:
    if not c.readable:
        return (
            f"{UNREADABLE} *{esc(c.alias)}* — could not be read: {esc(_clip(c.error or '', 200))}"
        )
    worst = c.worst
    emoji = GREEN if not c.shown else EMOJI[worst]
    verdict = counts(c.shown) if c.shown else "all clear"
    data_age = age(c.report.data_as_of if c.report else None, now)
    extra = [f":warning: {data_age}" if _stale(c, now, stale_after_s) else data_age]
    if c.new:
        extra.append(f"{len(c.new)} new")
    if c.silenced:
        extra.append(f"{len(c.silenced)} silenced")
    return f"{emoji} *{esc(c.alias)}* — {verdict} · " + " · ".join(extra)


def _cluster_lines(view: DigestView) -> list[str]:
    """A line per cluster; past the budget, green clusters share one line and the rest is cut
    with a pointer to the thread (Slack caps a message's size)."""
    lines = [_cluster_line(c, view.now, view.stale_after_s) for c in view.ranked]
    if sum(len(line) + 1 for line in lines) <= CLUSTER_LINES_BUDGET:
        return lines
    quiet = [c.alias for c in view.clusters if c.readable and not c.shown]
    # Worst first: clusters with findings by severity, then those that could not be read.
    ranked = sorted(
        (c for c in view.clusters if not (c.readable and not c.shown)),
        key=lambda c: (not c.readable, c.worst.rank),
    )
    lines = [_cluster_line(c, view.now, view.stale_after_s) for c in ranked]
    if quiet:
        lines.append(_clip(f"{GREEN} all clear: " + ", ".join(f"*{esc(a)}*" for a in quiet), 1000))
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + 1 > CLUSTER_LINES_BUDGET:
            out.append(f"_…and {len(lines) - i} more cluster line(s) in the thread_")
            break
        out.append(line)
        size += len(line) + 1
    return out


def _new_lines(view: DigestView) -> list[str]:
    items = sorted(view.new, key=lambda p: (p[1].severity.rank, p[0], p[1].code, p[1].subject))
    lines = [
        f"• {EMOJI[f.severity]} *{esc(alias)}* `{f.code}` {esc(_clip(f.title, 150))}"
        for alias, f in items[:MAX_LISTED]
    ]
    if len(items) > MAX_LISTED:
        lines.append(f"_…and {len(items) - MAX_LISTED} more in the thread_")
    return lines


def _resolved_lines(view: DigestView) -> list[str]:
    items = sorted(view.resolved, key=lambda p: (p.severity.rank, p.cluster, p.code, p.subject))
    lines = [
        f"• :white_check_mark: *{esc(p.cluster)}* `{p.code}` ~{esc(_clip(p.title, 150))}~"
        for p in items[:MAX_LISTED]
    ]
    if len(items) > MAX_LISTED:
        lines.append(f"_…and {len(items) - MAX_LISTED} more_")
    return lines


# Slack ---------------------------------------------------------------------------------------


def digest_parent(view: DigestView) -> SlackMessage:
    blocks: list[Block] = _sections(_title(view))
    since = (
        f"since the previous digest ({when(view.previous_at, view.timezone)})"
        if view.previous_at is not None
        else ""
    )
    if view.previous_at is None:
        blocks += _sections(
            "_First digest of this name: from the next one on, it says what changed._"
        )
    elif not view.new and not view.resolved:
        blocks += _sections(f"*Nothing changed* {since}.")
    else:
        if view.new:
            blocks += _sections("\n".join([f"*New* {since}", *_new_lines(view)]))
        if view.resolved:
            blocks += _sections("\n".join([f"*Resolved* {since}", *_resolved_lines(view)]))
    lines = _cluster_lines(view)
    if not view.clusters:
        lines.append("_This digest names no clusters._")
    blocks += _sections("\n".join(lines))
    meta = []
    if view.unreadable:
        meta.append(f"{len(view.unreadable)} cluster(s) could not be read")
    if view.silenced_count:
        meta.append(f"{view.silenced_count} silenced finding(s) left out")
    if view.below_count:
        meta.append(f"{view.below_count} finding(s) below {view.min_severity.value} left out")
    if view.changed:
        meta.append("one line per finding in the thread")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(" · ".join(meta), 3000))]))
    return SlackMessage(text=_fallback(view), blocks=[b.to_dict() for b in blocks[:50]])


def _fallback(view: DigestView) -> str:
    worst = min(
        (c.worst for c in view.clusters if c.readable), key=lambda s: s.rank, default=Severity.OK
    )
    parts = [f"digest {view.name}: {worst.value.upper()}"]
    if view.previous_at is not None:
        parts.append(f"{len(view.new)} new, {len(view.resolved)} resolved")
    if view.unreadable:
        parts.append(f"{len(view.unreadable)} unreadable")
    return ", ".join(parts)


def _cluster_groups(c: ClusterDigest, now: float) -> list[list[Block]]:
    head = f"*{esc(c.alias)}*"
    if not c.readable:
        return [_sections(f"{head}\n{UNREADABLE} could not be read: {esc(c.error or '')}")]
    new = {f.fingerprint for f in c.new}
    lines = [
        f"{head} — {counts(c.shown) or 'all clear'} · `/aksdiag health {esc(c.alias)}` for the full answer"
    ]
    for f in sorted(c.shown, key=lambda f: (f.severity.rank, f.code, f.subject)):
        mark = ":new: " if f.fingerprint in new else ""
        lines.append(
            f"• {mark}{EMOJI[f.severity]} {esc(_clip(f.title, 160))} · `{f.code}` · "
            f"{esc(_clip(readable_subject(f.subject), 80))}"
        )
    groups: list[list[Block]] = [_sections("\n".join(lines))]
    if c.silenced:
        lines = [f"*Silenced on {esc(c.alias)}* ({len(c.silenced)})"] + [
            f"• `{f.code}` {esc(_clip(f.title, 150))} — {silence_line(s, now)}"
            for f, s in c.silenced
        ]
        groups.append(_sections("\n".join(lines)))
    if c.report and c.report.unavailable:
        names = ", ".join(f"`{esc(u.source)}`" for u in c.report.unavailable)
        note = (
            f"_Not checked ({len(c.report.unavailable)}):_ {names} — "
            f"`/aksdiag health {esc(c.alias)}` says why"
        )
        groups.append([ContextBlock(elements=[MarkdownTextObject(text=_clip(note, 2000))])])
    return groups


def digest_thread(view: DigestView) -> list[SlackMessage]:
    """Replies for each cluster with something to say, worst first, one line per finding;
    clusters that could not be read share replies, and green clusters share one line. Nothing
    when nothing changed since the previous digest (the parent says so)."""
    if not view.changed:
        return []
    messages: list[SlackMessage] = []
    quiet: list[str] = []
    unreadable: list[list[Block]] = []
    for c in view.ranked:
        if not c.readable:
            unreadable += _cluster_groups(c, view.now)
        elif not c.shown and not c.silenced:
            quiet.append(c.alias)
        else:
            messages += pack(_cluster_groups(c, view.now), f"digest {view.name}: {c.alias}")
    if unreadable:
        messages += pack(unreadable, f"digest {view.name}: clusters that could not be read")
    if quiet:
        names = ", ".join(f"*{esc(a)}*" for a in quiet)
        text = f"{GREEN} Nothing at or above {view.min_severity.value} on {names}."
        blocks = [b.to_dict() for b in _sections(text)]
        messages.append(SlackMessage(text=f"digest {view.name}: all clear", blocks=blocks))
    return messages


def render_digest(view: DigestView) -> tuple[SlackMessage, list[SlackMessage]]:
    return digest_parent(view), digest_thread(view)


def failure_message(name: str, at: float, tz: str, error: str) -> SlackMessage:
    """What the channel sees when a scheduled digest could not be produced."""
    text = (
        f"{UNREADABLE} *Health digest `{esc(name)}`* for {when(at, tz)} could not be produced: "
        f"{esc(_clip(error, 1500))}\nRun `aksdiag digest {esc(name)} --print` to see it, or "
        f"`/aksdiag digest {esc(name)}` to post it again."
    )
    return SlackMessage(text=f"digest {name} failed", blocks=[b.to_dict() for b in _sections(text)])


# Terminal ------------------------------------------------------------------------------------


def render_digest_text(view: DigestView, console: Console) -> None:
    console.print(
        Text.assemble(
            ("Health digest ", "bold"),
            (view.name, "bold cyan"),
            f"  ·  {when(view.at, view.timezone)}",
        )
    )
    for c in view.ranked:
        if not c.readable:
            console.print(
                Text.assemble(
                    ("  ? ", "magenta"), (c.alias, "bold"), f"  could not be read: {c.error}"
                )
            )
            continue
        style = STYLE[c.worst] if c.shown else "green"
        console.print(
            Text.assemble(
                ("  ● ", style),
                (c.alias, "bold"),
                f"  {counts(c.shown) or 'all clear'}",
                (f"  · {age(c.report.data_as_of if c.report else None, view.now)}", "dim"),
            )
        )
    if view.previous_at is None:
        console.print(Text("First digest of this name: nothing to compare with yet.", "dim"))
    elif not view.new and not view.resolved:
        console.print(Text("Nothing changed since the previous digest.", "dim"))
    for alias, f in view.new:
        console.print(
            Text.assemble(
                ("  NEW ", "bold yellow"),
                (f"{alias} ", "bold"),
                (f.code, STYLE[f.severity]),
                f"  {f.title}",
            )
        )
    for p in view.resolved:
        console.print(
            Text.assemble(
                ("  RESOLVED ", "bold green"), (f"{p.cluster} ", "bold"), p.code, f"  {p.title}"
            )
        )
    for c in view.ranked:
        if not c.shown and not c.silenced:
            continue
        console.rule(Text(c.alias, style="bold"), align="left")
        for f in sorted(c.shown, key=lambda f: (f.severity.rank, f.code, f.subject)):
            console.print(
                Text.assemble(
                    (f"  {f.severity.value.upper():8}", STYLE[f.severity]),
                    (f" {f.code}", "bold"),
                    f"  {f.title}",
                )
            )
            for line in f.evidence[:5]:
                console.print(Text(f"      • {line}", "dim"))
        for f, s in c.silenced:
            left = format_duration(s.until - view.now)
            console.print(
                Text(
                    f"  silenced {f.code}  {f.title}  (by {s.created_by}, {left} more: {s.reason})",
                    "dim",
                )
            )
    left_out = []
    if view.silenced_count:
        left_out.append(f"{view.silenced_count} silenced")
    if view.below_count:
        left_out.append(f"{view.below_count} below {view.min_severity.value}")
    if left_out:
        console.print(Text("left out: " + ", ".join(left_out), "dim"))
