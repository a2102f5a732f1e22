"""What a Re-run says: one line on the parent ("re-run by @x at …: resolved 2, still 3, new 1")
and, in the thread, only the difference (what is resolved, the causes that are new). The
previous answer is known by its problems (fingerprint -> title, `problems`), which the bot keeps
with the parent much longer than the report cache. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from slack_sdk.models.blocks import Block

from bot.render.blocks import EMOJI, SlackMessage, _clip, _section, esc, pack
from bot.render.thread import cause_blocks
from diagnostics.diagnosis import ensure
from diagnostics.model import Report


def problems(report: Report | None) -> dict[str, str]:
    """fingerprint -> title of the problems (critical and warning) of a report."""
    if report is None:
        return {}
    return {f.fingerprint: f.title for f in report.findings if f.is_problem}


def _when(epoch: float) -> str:
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{time}}|{fallback}>"


def rerun_note(before: Mapping[str, str] | None, after: Report, user: str, at: float) -> str:
    """The parent's line after a Re-run; `before`: the problems the parent showed."""
    head = f":repeat: re-run by <@{user}> at {_when(at)}"
    if before is None:
        return head
    old, new = before, problems(after)
    resolved = len(old.keys() - new.keys())
    still = len(old.keys() & new.keys())
    added = len(new.keys() - old.keys())
    return f"{head}: resolved {resolved}, still {still}, new {added}"


def rerun_reply(before: Mapping[str, str] | None, after: Report, user: str) -> list[SlackMessage]:
    """The thread reply of a Re-run: what is resolved and the causes that are new; the whole
    answer only when the previous one is not known any more (`before` None)."""
    after = ensure(after)
    by_fp = after.by_fingerprint()
    title = f"re-run of {after.scenario} on {after.cluster}"
    old, new = dict(before or {}), problems(after)
    lines = [f":repeat: *Re-run by <@{user}>*"]
    if before is None:
        lines.append("The previous answer is no longer known: here is the whole answer again.")
    resolved = [old[fp] for fp in old.keys() - new.keys()]
    lines += [f"• :white_check_mark: resolved: {esc(_clip(t, 160))}" for t in sorted(resolved)]
    fresh = [
        c
        for c in after.causes
        if any(fp not in old for fp in (*c.fingerprints, *c.symptoms) if fp in new)
    ]
    still = len(old.keys() & new.keys())
    if still:
        lines.append(f"• {still} problem(s) unchanged (above in this thread)")
    if before is not None and not resolved and not fresh:
        lines.append("Nothing changed.")
    groups: list[list[Block]] = [[_section("\n".join(lines))]]
    causes = after.causes if before is None else fresh
    for n, cause in enumerate(causes, 1):
        groups.append(cause_blocks(after, cause, n, by_fp))
    if before is not None and fresh:
        groups[0].append(_section(f"{EMOJI[after.verdict]} *New since the last answer:*"))
    return pack(groups, title)
