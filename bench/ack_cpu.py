"""Where the bot's CPU goes per slash command, and a profile of each thread role.

    .venv/bin/python -m bench.ack_cpu [N] [--profile]

Runs the bot in-process (tests/bot_harness: real Bolt app over signed HTTP, the Slack
emulator, an embedded valkey), sends N commands (default 200) at concurrency 20, waits for
every answer, then prints the CPU each thread role used (Linux /proc per-thread counters) per
command. `--profile` adds a cProfile of the HTTP server, listener and answer threads (wall
time per function: GIL waits show up as time in lock and queue calls).

What it showed (issue #16, row 1 of docs/benchmarks.md, 2 shared cores, so absolute
latencies are noisy): the ack path (waitress + Bolt verification and dispatch, the listener's
parse/authorize/ack) costs about 1.2 ms of CPU per command; the answer path (rendering and
posting to Slack, Redis bookkeeping) about 4-6 ms, in the same interpreter. With 20 commands
in flight on one CPU, an ack waits behind answers holding the GIL, and each ack needs three
thread hand-offs (waitress worker -> Bolt listener pool -> back). The profile also shows a new
TCP connection per Slack Web API call (slack_sdk's urllib client: a getaddrinfo and connect
per post; a TLS handshake each against real Slack) and contention on redis-py's pool lock.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

CONCURRENCY = 20
ROLES = (
    ("aksdiag-listener", "listener (parse, authorize, ack)"),
    ("waitress", "HTTP server (waitress + Bolt verify/dispatch)"),
    ("aksdiag-http", "HTTP loop (waitress asyncore)"),
    ("aksdiag-work", "bot executor (answer: render, post)"),
    ("aksdiag-run", "run workers (collect + analyse)"),
)
PROFILED = ("listener", "HTTP server", "bot executor")


def role(thread_name: str) -> str:
    return next((r for prefix, r in ROLES if thread_name.startswith(prefix)), "other")


def cpu_by_thread() -> dict[int, tuple[str, float]]:
    """native thread id -> (name, user+system CPU seconds so far)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        try:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[t.native_id] = (t.name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def main(argv: list[str]) -> int:
    from bot_harness import Bot  # tests/ is on sys.path: see bench/__init__.py

    from bot.redis_embedded import EmbeddedRedis

    n = int(next((a for a in argv if a.isdigit()), "200"))
    profiles: dict[str, list[cProfile.Profile]] = defaultdict(list)

    def start_profiler(frame: FrameType, event: str, arg: Any) -> None:
        sys.setprofile(None)
        r = role(threading.current_thread().name)
        if r.startswith(PROFILED):
            p = cProfile.Profile()
            profiles[r].append(p)
            p.enable()

    if "--profile" in argv:
        threading.setprofile(start_profiler)
    embedded = EmbeddedRedis().start()
    bot = Bot(Path(tempfile.mkdtemp()), embedded.url)
    try:
        bot.command("apiserver prod")
        bot.finished_parents(count=1, timeout=30)  # warm: pools started, first run cached
        before = cpu_by_thread()
        acks: list[float] = []

        def one(i: int) -> int:
            started = time.perf_counter()
            status = int(bot.command(f"apiserver {'prod' if i % 2 else 'staging'}").status)
            acks.append(time.perf_counter() - started)
            return status

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            statuses = set(pool.map(one, range(n)))
        bot.slack.wait_for(lambda: len(bot.slack.top_level()) >= n + 1, 300)
        wall = time.perf_counter() - t0
        after = cpu_by_thread()
        used: dict[str, float] = defaultdict(float)
        for tid, (name, cpu) in after.items():
            used[role(name)] += cpu - before.get(tid, (name, 0.0))[1]
        acks.sort()
        print(
            f"{n} commands at concurrency {CONCURRENCY}, all answered in {wall:.2f} s; ack p50 "
            f"{acks[n // 2] * 1000:.1f} ms, p99 {acks[int(n * 0.99) - 1] * 1000:.1f} ms; "
            f"HTTP statuses {sorted(statuses)}"
        )
        total = sum(used.values()) or 1.0
        for r, cpu in sorted(used.items(), key=lambda kv: -kv[1]):
            print(f"  {r:48} {cpu:6.2f} s CPU {cpu / n * 1000:6.2f} ms/command {cpu / total:6.1%}")
        for r, ps in profiles.items():
            for p in ps:
                p.snapshot_stats()
            stats = pstats.Stats(*ps, stream=(buf := io.StringIO()))
            stats.sort_stats("tottime").print_stats(12)
            print(f"=== {r} (wall time per function)")
            print("\n".join(buf.getvalue().splitlines()[6:20]))
    finally:
        bot.stop()
        embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
