"""The network path to the API server, hop by hop (`Report.path`), for Slack (Block Kit
sections) and the terminal (rich). Renderers call one function each; nothing here knows how
the path was computed (see diagnostics.checks.netpath_path)."""

from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text
from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from diagnostics.model import Hop, Report

TITLE = "Network path to the API server"
EMOJI = {"pass": ":white_check_mark:", "blocked": ":no_entry:", "unknown": ":grey_question:"}
MARK = {"pass": ("✔", "green"), "blocked": ("✖", "bold red"), "unknown": ("?", "magenta")}
MAX_SECTION = 3000


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def hop_line(hop: Hop) -> str:
    """One hop as a Slack mrkdwn line."""
    line = f"{EMOJI.get(hop.verdict, '•')} *{_esc(hop.name)}*"
    return line + (f" — {_esc(hop.detail)}" if hop.detail else "")


def path_groups(report: Report) -> list[list[Block]]:
    """The path as one group of section blocks (empty when the report has no path)."""
    if not report.path:
        return []
    sections: list[Block] = []
    text = f"*{TITLE}*"
    for line in (hop_line(h) for h in report.path):
        line = line if len(line) < MAX_SECTION else line[: MAX_SECTION - 2] + "…"
        if len(text) + len(line) + 1 > MAX_SECTION:
            sections.append(SectionBlock(text=MarkdownTextObject(text=text)))
            text = line
        else:
            text += "\n" + line
    sections.append(SectionBlock(text=MarkdownTextObject(text=text)))
    return [sections]


def render_path(report: Report, console: Console) -> None:
    """The path in the terminal, one hop a line, the verdict first."""
    if not report.path:
        return
    console.print(Rule(Text(TITLE.upper(), style="bold"), align="left"))
    for hop in report.path:
        mark, style = MARK.get(hop.verdict, ("•", ""))
        console.print(Text.assemble((f"{mark} {hop.verdict:8}", style), (f" {hop.name}", "bold")))
        if hop.detail:
            console.print(Padding(Text(hop.detail, style="dim"), (0, 0, 0, 11)))
    console.print()
