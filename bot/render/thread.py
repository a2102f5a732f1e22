"""The thread under an answer, readable on a phone: per cause its title, the few evidence lines
that prove it, the symptoms it explains (one line each), and one or two commands (confirm,
fix); everything else (every step, long evidence, fingerprints) behind the cause's Details
button. Info and ok findings and what could not be checked collapse into one context line.

Also the Details answer of one cause, the Show commands answer (every step with its text,
commands that change something marked) and the same as a commented shell file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    Option,
    StaticSelectElement,
)

from bot.render.blocks import (
    DETAILS_ACTION,
    EMOJI,
    FENCE,
    MAX_INLINE_COMMAND,
    SILENCE_ACTION,
    SlackMessage,
    SnippetFile,
    _clip,
    _code,
    _section,
    _sections,
    context_block,
    esc,
    finding_blocks,
    pack,
)
from bot.render.path import path_groups
from bot.render.words import (
    PLACEHOLDERS,
    asked,
    changes,
    listing,
    not_checked,
    placeholder_note,
    placeholders,
    readable_subject,
    symptom_lines,
)
from diagnostics.diagnosis import cause_title, context, ensure
from diagnostics.model import Cause, Finding, Report, Severity, Step

EVIDENCE_LINES = 3  # per cause in the thread; the rest is behind Details
EVIDENCE_CHARS = 240
SYMPTOM_CHARS = 160
SHOWN_COMMANDS = 2
SLASH = "/aksdiag"
CHANGES_MARK = ":warning: *changes the cluster*"


def slack_command(command: str, slash: str = SLASH) -> str:
    """`aksdiag run pod-ip prod --node N` -> `/aksdiag pod-ip prod --node N` (in Slack, another
    scenario is asked with the slash command)."""
    if command.startswith("aksdiag run "):
        return f"{slash} {command[len('aksdiag run ') :]}"
    return command


def snippet_name(finding: Finding, index: int) -> str:
    return f"{finding.code.replace('.', '-')}-{finding.fingerprint[:6]}-step{index}.sh"


def step_lines(
    step: Step, index: int, finding: Finding | None = None, where: str = "slack"
) -> list[str]:
    """A numbered step: its text (marked when its command changes something), the command in a
    code block (never cut: a command too long for a message names its file), and what its
    placeholders mean."""
    command = step.command
    mark = f"{CHANGES_MARK} · " if command and changes(command) else ""
    lines = [f"{index}. {mark}{esc(step.text)}"]
    if not command:
        return lines
    if where == "slack":
        command = slack_command(command)
    if len(command) > MAX_INLINE_COMMAND:
        name = snippet_name(finding, index) if finding else "command.sh"
        lines.append(
            f"_The command is {len(command):,} characters: it is in the file `{name}` "
            "in this thread, whole (never shortened)._"
        )
    else:
        lines.append(_code(command))
    names = placeholders(command)
    if names:
        lines.append(
            "Fill in: "
            + "; ".join(f"`{p}` = {esc(PLACEHOLDERS.get(p, 'your value'))}" for p in names)
        )
    return lines


def _pick_steps(steps: tuple[Step, ...]) -> list[tuple[int, Step]]:
    """The one or two commands a cause shows: the first read-only one (confirm) and the first
    that changes something (fix); or the first two when none changes anything."""
    numbered = [(i, s) for i, s in enumerate(steps, 1) if s.command]
    confirm = next(((i, s) for i, s in numbered if not changes(s.command or "")), None)
    fix = next(((i, s) for i, s in numbered if changes(s.command or "")), None)
    picked = [p for p in (confirm, fix) if p is not None]
    if len(picked) < SHOWN_COMMANDS:
        picked += [p for p in numbered if p not in picked][: SHOWN_COMMANDS - len(picked)]
    return sorted(picked, key=lambda p: p[0])


def _worst(findings: list[Finding]) -> Severity:
    return min((f.severity for f in findings), key=lambda s: s.rank)


def cause_blocks(
    report: Report, cause: Cause, number: int, by_fp: Mapping[str, Finding], where: str = "slack"
) -> list[Block]:
    own = [by_fp[fp] for fp in cause.fingerprints]
    symptoms = [by_fp[fp] for fp in cause.symptoms]
    first = own[0]
    emoji = EMOJI[_worst(own + symptoms)]
    lines = [f"{emoji} *{number}. {esc(cause_title(cause, by_fp))}*"]
    evidence = list(first.evidence)
    lines += [f"• {esc(_clip(e, EVIDENCE_CHARS))}" for e in evidence[:EVIDENCE_LINES]]
    if len(own) > 1:
        lines.append("• also on: " + esc(listing([readable_subject(f.subject) for f in own[1:]])))
    if symptoms:
        lines.append("*This explains:*")
        lines += [
            f"• {EMOJI[s.severity]} {esc(_clip(text, SYMPTOM_CHARS))}"
            for s, text in symptom_lines(symptoms)
        ]
    blocks = _sections("\n".join(lines))
    picked = _pick_steps(first.remediation)
    if picked:
        step_text: list[str] = []
        for i, step in picked:
            step_text += step_lines(step, i, first, where)
        blocks += _sections("\n".join(step_text))
    hidden = len([s for s in first.remediation]) - len(picked)
    more = []
    if len(evidence) > EVIDENCE_LINES:
        more.append(f"{len(evidence) - EVIDENCE_LINES} more evidence lines")
    if hidden > 0:
        more.append(f"{hidden} more steps")
    if symptoms or len(own) > 1:
        more.append("each finding in full")
    note = f"`{first.code}`"
    if more:
        note += " · Details: " + ", ".join(more)
    blocks.append(context_block(note))
    blocks.append(_cause_actions(report, cause, own + symptoms))
    return blocks


def details_value(report: Report, fingerprint: str) -> str:
    return json.dumps(
        {"s": report.scenario, "c": report.cluster, "a": report.arguments, "f": fingerprint},
        separators=(",", ":"),
    )[:2000]


def _cause_actions(report: Report, cause: Cause, findings: list[Finding]) -> ActionsBlock:
    elements: list[Any] = [
        ButtonElement(
            text="Details",
            action_id=f"{DETAILS_ACTION}-{cause.fingerprints[0][:8]}",  # unique in a message
            value=details_value(report, cause.fingerprints[0]),
        )
    ]
    options = [
        Option(text=_clip(f"{f.code} · {readable_subject(f.subject)}", 75), value=f.fingerprint)
        for f in findings[:100]
    ]
    elements.append(
        StaticSelectElement(
            placeholder="Silence 24 h",
            action_id=f"{SILENCE_ACTION}-{cause.fingerprints[0][:8]}",
            options=options,
        )
    )
    return ActionsBlock(elements=elements, block_id=f"cause-{cause.fingerprints[0]}")


def context_line(report: Report) -> str:
    """Info and ok findings, and what could not be checked, in one line."""
    parts = [f"{EMOJI[f.severity]} {esc(_clip(f.title, 140))}" for f in context(report)]
    text = " · ".join(parts)
    if report.unavailable:
        missing = "; ".join(esc(not_checked(u)) for u in report.unavailable)
        text += ("\n" if text else "") + f":grey_question: Not checked: {missing}"
    return text


def _long_commands(report: Report) -> list[SnippetFile]:
    out = []
    for f in report.sorted_findings():
        for i, step in enumerate(f.remediation, 1):
            if step.command and len(step.command) > MAX_INLINE_COMMAND:
                mark = "# CHANGES THE CLUSTER\n" if changes(step.command) else ""
                out.append(
                    SnippetFile(
                        snippet_name(f, i),
                        f"# {f.code}: {f.title}\n# step {i}: {step.text}\n{mark}{step.command}\n",
                        f"{f.code} step {i} ({len(step.command):,} characters)",
                    )
                )
    return out


def thread_messages(report: Report, *, where: str = "slack") -> list[SlackMessage]:
    """The thread: one group per cause (worst and asked-about first), then the context line.
    Commands too long for a message ride along as files on the last reply."""
    report = ensure(report)
    by_fp = report.by_fingerprint()
    title = f"{report.scenario} on {report.cluster}: {report.headline}"
    groups = [
        cause_blocks(report, cause, n, by_fp, where) for n, cause in enumerate(report.causes, 1)
    ]
    if not groups:
        groups = [[_section(":large_green_circle: *No problems found.*")]]
    # The network path, hop by hop (Report.path, bot.render.path): after the causes it
    # proves, before the context line.
    groups += path_groups(report)
    line = context_line(report)
    if line:
        groups.append([context_block(chunk) for chunk in _chunks(line)])
    messages = pack(groups, _clip(title, 300))
    files = _long_commands(report)
    if files and messages:
        messages[-1].files.extend(files)
    return messages


def _chunks(text: str, size: int = 2900) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)][:10]


def cause_of(report: Report, fingerprint: str) -> Cause | None:
    report = ensure(report)
    return next((c for c in report.causes if fingerprint in (*c.fingerprints, *c.symptoms)), None)


def details_messages(report: Report, fingerprint: str) -> list[SlackMessage]:
    """Details of the cause holding `fingerprint`: each of its findings in full."""
    report = ensure(report)
    by_fp = report.by_fingerprint()
    cause = cause_of(report, fingerprint)
    if cause is None:
        finding = by_fp.get(fingerprint)
        if finding is None:
            return [
                SlackMessage(
                    text="That finding is no longer reported: Re-run for the current answer.",
                    blocks=[
                        _section(
                            "That finding is no longer reported: *Re-run* for the current answer."
                        ).to_dict()
                    ],
                )
            ]
        groups = [finding_blocks(finding)]
    else:
        groups = [finding_blocks(by_fp[fp]) for fp in (*cause.fingerprints, *cause.symptoms)]
    return pack(groups, f"details: {asked(report)}")


def commands_messages(report: Report, where: str = "slack") -> list[SlackMessage]:
    """Every command of the report with its step's text, by cause (Show commands)."""
    report = ensure(report)
    by_fp = report.by_fingerprint()
    groups = []
    for n, cause in enumerate(report.causes, 1):
        lines = [f"*{n}. {esc(cause_title(cause, by_fp))}*"]
        for fp in (*cause.fingerprints, *cause.symptoms):
            f = by_fp[fp]
            steps = [(i, s) for i, s in enumerate(f.remediation, 1) if s.command]
            if not steps:
                continue
            lines.append(f"`{f.code}` · {esc(readable_subject(f.subject))}")
            for i, step in steps:
                lines += step_lines(step, i, f, where)
        if len(lines) > 1:
            groups.append(_sections("\n".join(lines)))
    if not groups:
        groups = [[_section("No commands: nothing to fix.")]]
    return pack(groups, f"commands for {asked(report)}")


def commands_script(report: Report) -> str:
    """Show commands as a commented shell file: each step's text above its command, commands
    that change the cluster marked, placeholders explained. It exits before the first command:
    it is a list of steps to read, not a script to run."""
    report = ensure(report)
    by_fp = report.by_fingerprint()
    out = [
        "#!/bin/sh",
        f"# aksdiag {asked(report)}",
        f"# {report.headline}",
        "# Read each step before running it. Commands marked CHANGES THE CLUSTER create, change",
        "# or delete something; every other command only reads.",
        "exit 0  # a list of steps, not a script to run as a whole",
        "",
    ]
    for n, cause in enumerate(report.causes, 1):
        out.append(f"### {n}. {cause_title(cause, by_fp)}")
        for fp in (*cause.fingerprints, *cause.symptoms):
            f = by_fp[fp]
            steps = [(i, s) for i, s in enumerate(f.remediation, 1) if s.command]
            if not steps:
                continue
            out.append(f"## {f.code} ({readable_subject(f.subject)})")
            for i, step in steps:
                command = step.command or ""
                mark = "CHANGES THE CLUSTER: " if changes(command) else ""
                out.append(f"# {i}. {mark}{step.text}")
                note = placeholder_note(command)
                if note:
                    out.append(f"#    fill in: {note}")
                out.append(command)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


__all__ = [
    "FENCE",
    "cause_blocks",
    "cause_of",
    "commands_messages",
    "commands_script",
    "context_line",
    "details_messages",
    "slack_command",
    "step_lines",
    "thread_messages",
]
