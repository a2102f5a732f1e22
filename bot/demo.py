"""`make demo`: the diagnosis of every bundled example cluster, in the terminal.

No credentials, no network: the examples are snapshot folders under examples/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from bot.render import render_text
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.runner import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> int:
    console = Console()
    folders = sorted(
        p for p in EXAMPLES.iterdir() if (p / "cluster.json").exists() or (p / "k8s").is_dir()
    )
    if not folders:
        console.print(f"no example snapshots under {EXAMPLES}", style="red")
        return 1
    for folder in folders:
        console.print(
            Rule(f"[bold]aksdiag run health {folder.name} --snapshot examples/{folder.name}")
        )
        report = run("health", SnapshotSource(folder, folder.name))
        render_text(report, console)
        console.print()
    console.print(
        "Try one scenario yourself, e.g.:\n"
        "  .venv/bin/aksdiag run apiserver prod --snapshot examples/broken-apiserver "
        "--from 198.51.100.7\n"
        "  .venv/bin/aksdiag run service prod shop/web --snapshot examples/broken-service --format json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
