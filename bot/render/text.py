"""The terminal rendering of a report (rich): verdict first, findings grouped by severity."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from bot.render.path import render_path
from diagnostics.model import Finding, Report, Severity

STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}
ICON = {Severity.CRITICAL: "✖", Severity.WARNING: "▲", Severity.INFO: "ℹ", Severity.OK: "✔"}


def _print_finding(f: Finding, console: Console) -> None:
    console.print(
        Text.assemble(
            (f"{ICON[f.severity]} {f.severity.value.upper():8}", STYLE[f.severity]),
            (f" {f.code}", "bold"),
            f"  {f.title}",
        )
    )
    body: list[RenderableType] = []
    for line in f.evidence:
        body.append(Text.assemble(("• ", "dim"), line))
    if f.cause:
        body.append(Text.assemble(("why: ", "italic dim"), f.cause))
    if body:
        console.print(Padding(Group(*body), (0, 0, 0, 4)))
    for i, step in enumerate(f.remediation, 1):
        console.print(Padding(Text.assemble((f"{i}. ", "bold"), step.text), (0, 0, 0, 4)))
        if step.command:
            # Commands are never wrapped or cropped, so they copy-paste whole.
            console.print(Text("       " + step.command, style="green"), soft_wrap=True)
    if f.docs:
        console.print(
            Text.assemble(("    docs: ", "dim"), (f.docs, "dim underline")), soft_wrap=True
        )


def render_text(report: Report, console: Console) -> None:
    worst = report.worst
    counts = report.counts()
    summary = "  ".join(f"{counts[s.value]} {s.value}" for s in Severity if counts[s.value])
    header = Text.assemble(
        (f"{report.scenario}", "bold"),
        " on ",
        (report.cluster, "bold"),
        "  →  ",
        (worst.value.upper(), STYLE[worst]),
        f"   ({summary or 'no findings'})",
    )
    meta = []
    if report.arguments:
        meta.append("args: " + ", ".join(f"{k}={v}" for k, v in report.arguments.items()))
    if report.source:
        meta.append(f"source: {report.source}")
    if report.data_as_of:
        meta.append(f"data as of {report.data_as_of}")
    if "total" in report.timings_ms:
        meta.append(f"took {report.timings_ms['total']:.0f} ms")
    console.print(Panel(Group(header, Text(" · ".join(meta), style="dim")), expand=True))
    for sev in Severity:
        group = [f for f in report.sorted_findings() if f.severity is sev]
        if not group:
            continue
        console.print(
            Rule(Text(f"{sev.value.upper()} ({len(group)})", style=STYLE[sev]), align="left")
        )
        for f in group:
            _print_finding(f, console)
            console.print()
    if not report.findings:
        console.print(Text("No findings.", style="green"))
    render_path(report, console)
    if report.unavailable:
        console.print(Rule(Text("NOT CHECKED", style="magenta"), align="left"))
        for u in report.unavailable:
            codes = f" [{', '.join(u.checks)}]" if u.checks else ""
            console.print(
                Text.assemble(
                    ("? ", "magenta"), (u.source, "bold"), f": {u.reason}", (codes, "dim")
                )
            )


def plain(report: Report) -> str:
    """The text rendering without colour, for logs and tests."""
    console = Console(record=True, width=110, color_system=None, force_terminal=False)
    with console.capture():
        render_text(report, console)
    return console.export_text()


__all__ = ["escape", "plain", "render_text"]
