"""Group 4: a fleet digest. 50 live clusters, each an API emulator that answers every request
after 200 ms; the digest as the bot posts it (`DigestService.post_now`, its Slack client at the
emulator, a real valkey server) against the slowest cluster diagnosed alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from slack_emulator import BOT_TOKEN
from slack_sdk import WebClient

from bench.generate import pod_count
from bench.harness import Results, Row, Scale, median
from bench.procs import PYTHON, BenchError, Helper
from bench.rows_bot import Slack
from bot.config import load_config
from bot.digest import DigestService
from bot.redis_embedded import EmbeddedRedis
from bot.sources import LIVE_SOURCES, source_for
from bot.store import connect
from diagnostics.runner import run

FLEET = "4. Fleet digest"
CHANNEL = "CFLEETDIGEST"

METHOD = """
`bench/kube_server.py --clusters N --latency 0.2` starts N Kubernetes API emulators (TLS, one
process for all, each a generated cluster: 10 nodes and 302 pods at full scale) that answer every request 200 ms late. The configuration has N
clusters reached by kubeconfig (`cache_ttl_seconds: 0`, so every run reads every cluster
again) and one digest over all of them. The digest is `DigestService.post_now` as
`aksdiag digest NAME` and the bot build it (default settings), posting to the Slack emulator
with a real valkey server, in this process. A first digest builds every cluster's clients (a
bot's first digest after it starts; its time is in the notes); then the baseline is `health` on
each cluster alone, as the digest runs it (`bot.sources.source_for`, then
`diagnostics.runner.run`): the slowest of the N; then the digest runs again, and its median is
the figure. As in a running bot, the clusters' clients (credentials, connection pools) are
kept from one run to the next.
"""


def fleet_digest(scale: Scale, work: Path, results: Results) -> None:
    results.methods[FLEET] = METHOD
    n = scale.fleet
    server = Helper(
        [
            PYTHON,
            "-m",
            "bench.kube_server",
            "--clusters",
            str(n),
            "--nodes",
            str(scale.fleet_nodes),
            "--pods-per-node",
            str(scale.pods_per_node),
            "--latency",
            str(scale.fleet_latency_s),
            "--kubeconfig",
            str(work / "fleet-kubeconfig"),
        ],
        log=work / "fleet.log",
        ready_timeout=600,
    )
    slack = None
    redis = None
    try:
        aliases = [f"fleet-{i:02d}" for i in range(n)]
        config_path = work / "fleet.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "cache_ttl_seconds": 0,  # every run reads every cluster again
                    "clusters": {
                        a: {"kubernetes": {"kubeconfig": k}}
                        for a, k in zip(aliases, server.info["kubeconfigs"], strict=True)
                    },
                    "digests": [
                        {
                            "name": "fleet",
                            "channel": CHANNEL,
                            "cron": "0 8 * * mon-fri",
                            "clusters": aliases,
                        }
                    ],
                }
            )
        )
        config = load_config(config_path)
        slack = Slack(work)
        redis = EmbeddedRedis().start()
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        service = DigestService(config, connect(redis.url), client)

        LIVE_SOURCES.clear()
        started = time.perf_counter()
        service.post_now("fleet")  # the first digest of a process: every client is built
        cold = time.perf_counter() - started
        singles = []
        for alias in aliases:
            started = time.perf_counter()
            report = run("health", source_for(alias, config.clusters[alias], config))
            singles.append(time.perf_counter() - started)
            if "pods" not in report.collected:
                raise BenchError(f"health on {alias} read no pods: {report.unavailable}")
        digests, cpu = [], []
        for _ in range(scale.fleet_runs):
            started, cpu0 = time.perf_counter(), time.process_time()
            service.post_now("fleet")
            digests.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu0)
        posted = slack.state().get(CHANNEL, {})
        if posted.get("parents", 0) < scale.fleet_runs + 1:
            raise BenchError(f"the digest was not posted: {posted}")
    finally:
        LIVE_SOURCES.clear()
        if redis is not None:
            redis.stop()
        if slack is not None:
            slack.stop()
        server.stop()

    slowest, value = max(singles), median(digests)
    results.rows.append(
        Row(
            FLEET,
            f"digest of {n} clusters of {pod_count(scale.fleet_nodes, scale.pods_per_node):,} "
            f"pods, {scale.fleet_latency_s * 1000:.0f} ms API latency each",
            value,
            "s",
            slowest,
            "slowest single cluster",
            "≤ 3× baseline",
            value <= 3 * slowest,
            f"single clusters: median {median(singles):.2f} s, slowest {slowest:.2f} s; "
            f"digest runs: {', '.join(f'{d:.2f}' for d in digests)} s; the first digest of the "
            f"process (building every cluster's clients): {cold:.2f} s; CPU per digest "
            f"{median(cpu):.2f} s in this process (one interpreter lock); "
            f"{posted.get('replies', 0)} thread replies posted",
            len(digests),
            digests,
        )
    )


__all__ = ["fleet_digest"]
