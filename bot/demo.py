"""`make demo`: the bot's main job on the embedded default, in the terminal.

The bundled example clusters (snapshot folders under examples/, mapped by
examples/aksdiag.yaml) are diagnosed through the same run service the Slack bot uses — Redis
cache and singleflight on an embedded valkey server — with no credentials and no network.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import redis
from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from bot.config import load_config
from bot.metrics import Metrics
from bot.redis_embedded import EmbeddedRedis
from bot.render import render_text
from bot.render.text import ICON, STYLE
from bot.runs import RunRequest, RunService
from diagnostics.checks.base import ScenarioArgs
from diagnostics.model import Severity

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = EXAMPLES / "aksdiag.yaml"

# The showcase: one scenario each, as an on-call engineer would type it in Slack.
SHOWCASE = (
    ("apiserver", "broken-apiserver", ScenarioArgs(from_ips=("198.51.100.7",))),
    ("pod-ip", "broken-podip-cni", ScenarioArgs()),
    ("service", "broken-service", ScenarioArgs(service=("shop", "web"))),
    ("node-api", "broken-nodeapi", ScenarioArgs(as_account=("shop", "orders-worker"))),
)


def _ask(service: RunService, scenario: str, cluster: str, args: ScenarioArgs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    outcome = service.get(RunRequest(scenario, cluster, args), run_id=uuid.uuid4().hex[:8])
    return outcome, (time.perf_counter() - started) * 1000


def main() -> int:
    console = Console()
    config = load_config(CONFIG)
    url = os.environ.get("REDIS_URL")
    embedded = None if url else EmbeddedRedis().start()
    url = url or embedded.url  # type: ignore[union-attr]
    client = redis.Redis.from_url(url)
    service = RunService(config, client, Metrics())
    try:
        console.print(Rule("[bold]aksdiag demo: the bundled example clusters"))
        console.print(
            f"config {CONFIG.relative_to(EXAMPLES.parent)} · Redis: "
            + ("embedded valkey " if embedded else "")
            + url
            + "\n"
        )
        table = Table("cluster", "verdict", "findings", "codes (warning and worse)")
        table.columns[3].overflow = "fold"
        for alias in config.clusters:
            outcome, _ = _ask(service, "health", alias, ScenarioArgs())
            r = outcome.report
            worst = r.worst
            bad = sorted({f.code for f in r.findings if f.severity.at_least(Severity.WARNING)})
            counts = "\n".join(f"{n} {s}" for s, n in r.counts().items() if n)
            table.add_row(
                alias,
                f"[{STYLE[worst]}]{ICON[worst]} {worst.value}[/]",
                counts or "none",
                "\n".join(bad) or "-",
            )
        console.print("[bold]/aksdiag health CLUSTER[/bold], for every example cluster:")
        console.print(table)

        for scenario, cluster, args in SHOWCASE:
            typed = " ".join([scenario, cluster, *_typed(args)])
            console.print(Rule(f"[bold]/aksdiag {typed}"))
            outcome, _ = _ask(service, scenario, cluster, args)
            render_text(outcome.report, console)

        scenario, cluster, args = SHOWCASE[0]
        again, ms = _ask(service, scenario, cluster, args)
        console.print(Rule("[bold]the same question again"))
        console.print(
            f"answered {again.how} from Redis in {ms:.1f} ms (report age {again.age_s or 0:.1f} s, "
            f"run {again.run_id}); the cluster was read once. Re-run in Slack reads it afresh."
        )
    finally:
        service.close()
        if embedded:
            embedded.stop()
    console.print(Rule())
    console.print(
        "Next:\n"
        "  .venv/bin/aksdiag run apiserver prod --snapshot examples/broken-apiserver "
        "--from 198.51.100.7 --format json\n"
        "  .venv/bin/aksdiag run health broken-service --config examples/aksdiag.yaml\n"
        "  Try the Slack bot in your workspace against these clusters: docs/slack.md "
        "(aksdiag serve --config examples/aksdiag.yaml)"
    )
    return 0


def _typed(args: ScenarioArgs) -> list[str]:
    out = []
    if args.service:
        out.append("/".join(args.service))
    if args.from_ips:
        out += ["--from", ",".join(args.from_ips)]
    if args.node:
        out += ["--node", args.node]
    if args.as_account:
        out += ["--as", "/".join(args.as_account)]
    if args.since:
        out += ["--since", str(args.to_dict()["since"])]
    return out


if __name__ == "__main__":
    sys.exit(main())
