"""Every string the bot shows a user, in one place: help, refusals, errors, confirmations.

Each error says what happened, why, and what to do next. Values that come from users or
clusters are escaped for Slack mrkdwn (`esc`) before they are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.render.blocks import esc
from bot.store import RunRecord
from diagnostics.scenarios import SCENARIOS


def _when(epoch: float) -> str:
    """Slack renders `<!date^…>` in each reader's own time zone."""
    fallback = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def help_text(command: str = "/aksdiag") -> str:
    lines = [
        "*aksdiag* diagnoses AKS networking and answers in a thread, worst finding first.",
        "",
        "*Scenarios*",
    ]
    for s in SCENARIOS.values():
        aliases = ", ".join(f"`{a}`" for a in s.aliases[:3])
        lines.append(f"• `{command} {s.usage}` — {s.help} _Aliases: {aliases}_")
    lines += [
        "",
        "*Other commands*",
        f"• `{command} clusters` — the clusters you may diagnose in this channel",
        f"• `{command} history CLUSTER` — the latest runs on a cluster",
        f"• `{command} digest NAME` — post a configured health digest now",
        f"• `{command} silence CODE CLUSTER [SUBJECT] [for DURATION] -- REASON` — hide a known "
        "finding for a while (for example `silence podip.ip-leak prod for 2h -- fix rolling "
        "out, INC-1234`)",
        f"• `{command} unsilence CODE CLUSTER [SUBJECT]` · `{command} silences [CLUSTER]`",
        "",
        "You can also mention me: `@aksdiag apiserver prod`. Answers are cached for a few "
        "minutes; the *Re-run* button always reads the cluster again.",
    ]
    return "\n".join(lines)


def usage_error(problem: str, command: str = "/aksdiag") -> str:
    return f":warning: {problem}\nType `{command} help` for every scenario and option."


def need_cluster(scenario: str, choices: Sequence[str]) -> str:
    usage = SCENARIOS[scenario].usage
    return f"which cluster? Usage: `{usage}`. {cluster_choices(choices)}"


def cluster_choices(choices: Sequence[str]) -> str:
    if not choices:
        return "You may not diagnose any cluster from this channel."
    return "Clusters you may diagnose here: " + ", ".join(f"`{esc(c)}`" for c in choices) + "."


def unknown_cluster(name: str, suggestion: str, choices: Sequence[str]) -> str:
    return f"unknown cluster `{esc(name)}`.{suggestion} {cluster_choices(choices)}"


def unknown_digest(name: str, suggestion: str, names: Sequence[str]) -> str:
    """`names`: only the digests this user may post (a hidden one reads as unknown)."""
    known = ", ".join(f"`{esc(n)}`" for n in names) or "none"
    shown = "".join(ch if ch.isprintable() and ch != "`" else "?" for ch in name[:40])
    return f"unknown digest `{esc(shown)}`.{suggestion} Digests you may post: {known}."


def forged_button() -> str:
    return (
        ":no_entry: That button does not match a diagnosis you may run here, so nothing ran. "
        "Type the command instead."
    )


def access_unknown() -> str:
    return (
        ":hourglass_flowing_sand: Your user-group memberships could not be read from Slack, so "
        "access to this cluster cannot be decided yet. Try again in a minute."
    )


def clusters_list(visible: Sequence[str]) -> str:
    """Only what the user may see: no count of the others (it would confirm they exist)."""
    if not visible:
        return ":lock: You may not diagnose any configured cluster from this channel."
    return "\n".join(["*Clusters you may diagnose here*"] + [f"• `{esc(c)}`" for c in visible])


def history(cluster: str, records: Sequence[RunRecord]) -> str:
    if not records:
        return f"No runs on *{esc(cluster)}* yet (records are kept for the latest 50)."
    lines = [f"*Latest runs on {esc(cluster)}*"]
    for r in records:
        args = " ".join(
            f"{k}={v if isinstance(v, str) else ','.join(v)}" for k, v in r.arguments.items()
        )
        verdict = r.verdict.upper() if r.verdict else r.outcome.upper()
        counts = ", ".join(f"{n} {sev}" for sev, n in r.counts.items()) or (
            r.error or "no findings"
        )
        took = f" in {r.duration_s:g}s" if r.duration_s is not None and r.outcome == "fresh" else ""
        who = f" by <@{r.user}>" if r.user else ""
        lines.append(
            f"• {_when(r.at)} `{r.scenario}`{(' ' + esc(args)) if args else ''}{who}: "
            f"*{verdict}* ({esc(counts)}) — {r.outcome}{took}, run `{r.run_id}`"
        )
    return "\n".join(lines)


def history_unavailable() -> str:
    return (
        ":warning: History is unavailable right now: the bot's Redis cannot be reached. "
        "Diagnoses still work (uncached)."
    )


def not_in_channel(command: str = "/aksdiag") -> str:
    return (
        ":wave: I am not a member of this channel, so I cannot post the answer here. "
        f"Invite me with `/invite @aksdiag`, then run `{command}` again."
    )


def run_failed(run_id: str, reason: str) -> str:
    return f":x: The diagnosis failed: {esc(reason)}. Run id `{run_id}` (quote it to whoever runs the bot)."


INTERRUPTED = "the bot restarted while running this, so it never finished"


def run_interrupted(run_id: str) -> str:
    return (
        f":warning: The diagnosis did not finish: {INTERRUPTED}. Run id `{run_id}`. "
        "Press *Re-run* to run it again."
    )


def run_failed_parent(scenario: str, cluster: str, requester: str | None) -> str:
    who = f" for <@{requester}>" if requester else ""
    return f"`{scenario}` on *{esc(cluster)}*{who} — :x: failed (details in the thread)"


def mention_empty() -> str:
    return "Mention me with a scenario and a cluster, for example `@aksdiag apiserver prod`."


def _silence_line(s: Any, with_cluster: bool) -> str:
    where = f"*{esc(s.cluster)}* " if with_cluster else ""
    subject = f" {esc(s.subject)}" if s.subject else " (every subject)"
    return (
        f"{where}`{esc(s.code)}`{subject} — by <@{s.created_by}> until {_when(s.until)}: "
        f"{esc(s.reason)}"
    )


def silenced_block(silenced: Sequence[tuple[Any, Any]]) -> dict[str, Any]:
    """A collapsed context block for findings hidden by silences: who, why, until when."""
    items = [
        f"`{f.code}` {esc(f.subject)} — by <@{s.created_by}> until {_when(s.until)}: {esc(s.reason)}"
        for f, s in silenced[:10]
    ]
    more = f" …and {len(silenced) - 10} more" if len(silenced) > 10 else ""
    text = f":no_bell: {len(silenced)} silenced: " + " · ".join(items) + more
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:2900]}]}


def silence_added(silence: Any, duration: str) -> str:
    return f":no_bell: <@{silence.created_by}> silenced {_silence_line(silence, True)} ({duration})"


def silence_removed(cluster: str, code: str, removed: bool, user: str) -> str:
    if removed:
        return f":bell: <@{user}> ended the silence of `{esc(code)}` on *{esc(cluster)}*."
    return f"Nothing to unsilence: `{esc(code)}` on *{esc(cluster)}* was not silenced."


def silences_list(items: Sequence[Any], hidden: int = 0) -> str:
    if not items:
        return "No silences are active" + (" on the clusters you may see here." if hidden else ".")
    lines = ["*Active silences*"] + [f"• {_silence_line(s, True)}" for s in items]
    return "\n".join(lines)


def silences_unavailable() -> str:
    return (
        ":warning: Silences cannot be read or changed right now: the bot's Redis cannot be reached."
    )


def digest_started(name: str, channel: str) -> str:
    return f":newspaper: Posting the *{esc(name)}* digest in <#{channel}>…"


def digest_done(name: str, channel: str) -> str:
    return f":white_check_mark: The *{esc(name)}* digest is posted in <#{channel}>."


def evidence_file_title(scenario: str, cluster: str) -> str:
    return f"Full evidence: {scenario} on {cluster}"


def commands_file_title(scenario: str, cluster: str) -> str:
    return f"Commands: {scenario} on {cluster} (read each step before running it)"


def usage_told_privately(scenario: str, cluster: str) -> str:
    return f"`{scenario}` on *{esc(cluster)}*: nothing to diagnose (the requester was told why)"


def silenced_from_button(code: str, subject: str, until: float) -> str:
    return (
        f":mute: Silenced `{code}` on {esc(subject)} until {_when(until)}. "
        "Undo with `/aksdiag unsilence`."
    )


def same_answer(link: str | None, posted_at: float) -> str:
    """The thread of a cached answer already posted in this channel: point to it."""
    earlier = (
        f"<{link}|the answer posted {_when(posted_at)}>"
        if link
        else f"the answer posted {_when(posted_at)}"
    )
    return (
        f":recycle: Same answer as {earlier} in this channel (from the cache): its thread has "
        "the causes and commands. *Re-run* reads the cluster again."
    )
