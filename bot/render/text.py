"""The terminal rendering of a report (rich), in the same shape as the Slack answer: the verdict
and headline, then each cause with the evidence that proves it, the symptoms it explains and
one or two commands; the context in one line. `verbose` (`-v`) adds every step, every evidence
line and the fingerprints.
"""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

from bot.render.path import render_path
from bot.render.thread import _pick_steps
from bot.render.words import (
    asked,
    changes,
    not_checked,
    placeholder_note,
    readable_subject,
    symptom_lines,
)
from diagnostics.diagnosis import cause_title, context, ensure
from diagnostics.model import Finding, Report, Severity, Step

STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}
ICON = {Severity.CRITICAL: "✖", Severity.WARNING: "▲", Severity.INFO: "ℹ", Severity.OK: "✔"}
EVIDENCE_LINES = 3


def _step(step: Step, index: int, console: Console) -> None:
    mark = (
        ("CHANGES THE CLUSTER ", "bold magenta") if step.command and changes(step.command) else ""
    )
    console.print(Padding(Text.assemble((f"{index}. ", "bold"), mark, step.text), (0, 0, 0, 4)))
    if step.command:
        # Commands are never wrapped or cropped, so they copy-paste whole.
        console.print(Text("       " + step.command, style="green"), soft_wrap=True)
        note = placeholder_note(step.command)
        if note:
            console.print(Padding(Text(f"fill in: {note}", style="dim"), (0, 0, 0, 7)))


def _finding_full(f: Finding, console: Console) -> None:
    """One finding in full (`-v`): every evidence line, why, every step, docs, fingerprint."""
    console.print(
        Text.assemble(
            ("    " + ICON[f.severity] + " ", STYLE[f.severity]), (f.code, "bold"), f"  {f.title}"
        )
    )
    body: list[RenderableType] = [Text.assemble(("• ", "dim"), line) for line in f.evidence]
    if f.cause:
        body.append(Text.assemble(("why: ", "italic dim"), f.cause))
    if body:
        console.print(Padding(Group(*body), (0, 0, 0, 6)))
    for i, step in enumerate(f.remediation, 1):
        _step(step, i, console)
    foot = f"fingerprint {f.fingerprint} · subject {f.subject}"
    if f.docs:
        foot = f"docs: {f.docs} · {foot}"
    console.print(Text("      " + foot, style="dim"), soft_wrap=True)


def render_text(report: Report, console: Console, *, verbose: bool = False) -> None:
    report = ensure(report)
    verdict = report.verdict
    counts = report.counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning") if counts[s])
    header = Text.assemble(
        (f"{verdict.value.upper() if verdict is not Severity.OK else 'OK'}", STYLE[verdict]),
        "  ",
        (report.headline, "bold"),
    )
    meta = [asked(report)]
    if summary:
        meta.append(summary)
    if report.source:
        meta.append(f"source: {report.source}")
    if report.data_as_of:
        meta.append(f"data as of {report.data_as_of}")
    if "total" in report.timings_ms:
        meta.append(f"took {report.timings_ms['total']:.0f} ms")
    console.print(Panel(Group(header, Text(" · ".join(meta), style="dim")), expand=True))
    by_fp = report.by_fingerprint()
    for n, cause in enumerate(report.causes, 1):
        own = [by_fp[fp] for fp in cause.fingerprints]
        symptoms = [by_fp[fp] for fp in cause.symptoms]
        first = own[0]
        worst = min((f.severity for f in own + symptoms), key=lambda s: s.rank)
        console.print(
            Text.assemble(
                (f"{n}. {ICON[worst]} ", STYLE[worst]),
                (cause_title(cause, by_fp), "bold"),
                (f"  [{first.code}]", "dim"),
            )
        )
        lines = first.evidence if verbose else first.evidence[:EVIDENCE_LINES]
        for line in lines:
            console.print(Padding(Text.assemble(("• ", "dim"), line), (0, 0, 0, 4)))
        if len(own) > 1:
            others = ", ".join(readable_subject(f.subject) for f in own[1:])
            console.print(Padding(Text(f"also on: {others}", style="dim"), (0, 0, 0, 4)))
        if symptoms:
            console.print(Padding(Text("explains:", style="italic"), (0, 0, 0, 4)))
            shown = [(x, x.title) for x in symptoms] if verbose else symptom_lines(symptoms)
            for s, line in shown:
                console.print(
                    Padding(
                        Text.assemble((ICON[s.severity] + " ", STYLE[s.severity]), line),
                        (0, 0, 0, 6),
                    )
                )
        if verbose:
            for f in own + symptoms:
                _finding_full(f, console)
        else:
            for i, step in _pick_steps(first.remediation):
                _step(step, i, console)
        console.print()
    if not report.causes:
        console.print(Text("No problems found.", style="green"))
    # The network path, hop by hop (Report.path, bot.render.path), goes here: after the
    # causes, before the context line.
    ctx = context(report)
    if ctx:
        console.print(
            Text.assemble(
                ("context: ", "dim"), " · ".join(f"{ICON[f.severity]} {f.title}" for f in ctx)
            )
        )
        if verbose:
            for f in ctx:
                _finding_full(f, console)
    render_path(report, console)
    if report.unavailable:
        console.print(
            Text.assemble(
                ("not checked: ", "magenta"), "; ".join(not_checked(u) for u in report.unavailable)
            )
        )
    if not verbose and report.causes:
        console.print(Text("every step, all evidence and fingerprints: add -v", style="dim"))


def plain(report: Report, *, verbose: bool = False) -> str:
    """The text rendering without colour, for logs and tests."""
    out = io.StringIO()
    console = Console(file=out, width=110, color_system=None, force_terminal=False)
    render_text(report, console, verbose=verbose)
    return out.getvalue()


__all__ = ["escape", "plain", "render_text"]
