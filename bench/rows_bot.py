"""Groups 1 and 2: the Slack bot in HTTP mode, as `aksdiag serve` runs it (a process of its
own: waitress + Bolt + the bot's handlers, its WebClient at the Slack emulator, a real valkey
server), under a burst of signed slash commands and under an incident storm.

The load generator is this process and nothing else; the Slack emulator, the bot and the
baseline each run in their own process, so no two of them share an interpreter lock.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from slack_client import SIGNING_SECRET, Answer, SlackClient
from slack_emulator import BOT_TOKEN

from bench.generate import objects
from bench.harness import Results, Row, Scale, median, percentile
from bench.procs import (
    BIN,
    PYTHON,
    ROOT,
    BenchError,
    Helper,
    cpu_seconds,
    env,
    free_port,
    split_cpus,
)
from bot.redis_embedded import EmbeddedRedis

ACK = "1. Ack latency"
STORM = "2. Incident storm"
EXAMPLES = ROOT / "examples"
# What the burst asks, in turn: every scenario over the bundled example clusters.
MIX = (
    "health broken-service",
    "apiserver broken-apiserver",
    "pod-ip broken-podip-cni",
    "service broken-service shop/web",
    "node-api broken-nodeapi",
    "health healthy",
    "pod-ip broken-podip-kubenet",
    "health firewall-udr",
    "apiserver private-cluster",
    "health stopped",
)

METHOD_ACK = """
A burst of signed slash commands (`/aksdiag <scenario> <cluster>`, every scenario over the
bundled example clusters in turn, each command from its own channel) at a fixed concurrency,
sent by this process as Slack sends them (form body, `X-Slack-Signature`), to `aksdiag serve`
in HTTP mode running as a process (waitress, Bolt, the bot's handlers, a real valkey server, its
WebClient at the Slack emulator, which runs in a third process). Latency is from sending the
request to reading the whole ack. The baseline is a bare Bolt app whose listener only acks the
same command, served by the same HTTP server class with the same thread count
(`bench/bare_bolt.py`). The server measured (the bot, or the baseline) runs alone on CPU 0;
the load generator, the Slack emulator and valkey share CPU 1, as they would run on other
machines in production. Each side gets the same number of bursts; the figure is the median
over bursts of each burst's p99. After each bot burst the harness waits until every command has
its answer at the Slack emulator: a parent message with the verdict and buttons, and at least
one thread reply.
"""

METHOD_STORM = """
A live cluster configured by kubeconfig (`bench/kube_server.py`'s emulator over TLS, 600 pods,
in this process) and a fresh bot process. 50 identical `/aksdiag health storm` commands are sent
at once from 50 channels; the emulator records every request, so a second read of any list
(a request for its first page) would show. Then the same command is sent again, one at a time: those answers come from
the report cache in valkey. Answer latency is from sending the command to the last Slack post
of its answer (both clocks are the machine's monotonic clock).
"""


# ---------------------------------------------------------------- the processes
def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s")


class Slack:
    """The Slack emulator process."""

    def __init__(self, work: Path) -> None:
        self.helper = Helper([PYTHON, "-m", "bench.slack_server"], log=work / "slack.log")
        self.api_url = str(self.helper.info["api_url"])

    def state(self) -> dict[str, dict[str, Any]]:
        with urllib.request.urlopen(
            f"{self.api_url.rsplit('/api/', 1)[0]}/_bench/state", timeout=30
        ) as resp:
            return dict(json.loads(resp.read())["channels"])

    def wait_answered(self, channels: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Poll until every channel has its answer (or the deadline); the channels' state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            mine = {c: state.get(c, {}) for c in channels}
            if all(s.get("answered") for s in mine.values()) or time.monotonic() > deadline:
                return mine
            time.sleep(0.1)

    def stop(self) -> None:
        self.helper.stop()


class BotProcess:
    """`aksdiag serve --config FILE` in HTTP mode with a valkey server of its own."""

    def __init__(
        self, work: Path, config: dict[str, Any], slack: Slack, cpus: set[int] | None = None
    ) -> None:
        work.mkdir(parents=True, exist_ok=True)
        path = work / "aksdiag.yaml"
        path.write_text(yaml.safe_dump(config))
        self.redis = EmbeddedRedis().start()
        port = free_port()
        environ = env(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            REDIS_URL=self.redis.url,
        )
        try:
            self.helper = Helper(
                [
                    str(BIN / "aksdiag"),
                    "serve",
                    "--config",
                    str(path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                log=work / "bot.log",
                environ=environ,
                ready_line=False,
                cpus=cpus,
            )
            self.base = f"http://127.0.0.1:{port}"
            _wait_http(self.base + "/healthz", 60)
        except BaseException:
            self.redis.stop()
            raise

    def stop(self) -> None:
        try:
            self.helper.stop()
        finally:
            self.redis.stop()


def example_clusters() -> dict[str, Any]:
    return {p.name: {"snapshot": str(p)} for p in sorted(EXAMPLES.iterdir()) if p.is_dir()}


# ---------------------------------------------------------------- the load
def burst(
    base: str, n: int, concurrency: int, text: Callable[[int], str], channel: Callable[[int], str]
) -> list[tuple[Answer, float]]:
    """n signed slash commands at `concurrency`; (answer, monotonic time sent) per command."""
    client = SlackClient(base)

    def one(i: int) -> tuple[Answer, float]:
        sent = time.monotonic()
        try:
            # one person per channel: a storm is many people (bot/limits.py limits one person)
            return client.command(text(i), channel=channel(i), user=f"U{channel(i)[1:]}"), sent
        except OSError as exc:  # a refused or reset connection is a failed ack, not a crash
            return Answer(0, f"{type(exc).__name__}: {exc}", time.monotonic() - sent), sent

    with ThreadPoolExecutor(concurrency, thread_name_prefix="slack-load") as pool:
        return list(pool.map(one, range(n)))


def storm_text(_: int) -> str:
    return "health storm"


def _channels(prefix: str, n: int) -> list[str]:
    return [f"C{prefix}{i:05d}" for i in range(n)]


# ---------------------------------------------------------------- group 1
def ack_latency(scale: Scale, work: Path, results: Results) -> None:
    results.methods[ACK] = METHOD_ACK
    n, conc = scale.ack_commands, scale.ack_concurrency

    def text(i: int) -> str:
        return MIX[i % len(MIX)]

    base_runs: list[list[float]] = []
    bot_runs: list[list[float]] = []
    answered, failed, slowest = 0, 0, 0.0
    with split_cpus() as (sut, _harness):
        slack = Slack(work)
        bot = None
        try:
            bare = Helper(
                [PYTHON, "-m", "bench.bare_bolt", SIGNING_SECRET, slack.api_url],
                log=work / "bare.log",
                cpus=sut,
            )
            try:
                base_url = f"http://127.0.0.1:{bare.info['port']}"
                cpu0 = cpu_seconds(bare.pid)
                for b in range(scale.ack_bursts):
                    answers = burst(base_url, n, conc, text, _channels(f"BASE{b}", n).__getitem__)
                    _require_ok(answers, "the bare Bolt app")
                    base_runs.append([a.elapsed_s * 1000 for a, _ in answers])
                base_cpu = (cpu_seconds(bare.pid) - cpu0) / (n * scale.ack_bursts)
            finally:
                bare.stop()
            config = {"cache_ttl_seconds": 300, "clusters": example_clusters()}
            bot = BotProcess(work / "bot-ack", config, slack, cpus=sut)
            cpu0 = cpu_seconds(bot.helper.pid)
            for b in range(scale.ack_bursts):
                channels = _channels(f"ACK{b}", n)
                answers = burst(bot.base, n, conc, text, channels.__getitem__)
                failed += sum(1 for a, _ in answers if a.status != 200)
                ms = [a.elapsed_s * 1000 for a, _ in answers]
                bot_runs.append(ms)
                slowest = max(slowest, *ms)
                state = slack.wait_answered(channels, timeout=180)
                answered += sum(1 for s in state.values() if s.get("answered"))
            bot_cpu = (cpu_seconds(bot.helper.pid) - cpu0) / (n * scale.ack_bursts)
        finally:
            if bot is not None:
                bot.stop()
            slack.stop()

    p99 = [percentile(r, 99) for r in bot_runs]
    base_p99 = [percentile(r, 99) for r in base_runs]
    value, baseline = median(p99), median(base_p99)
    bursts = scale.ack_bursts
    results.rows += [
        Row(
            ACK,
            f"ack p99, {n} commands at concurrency {conc}",
            value,
            "ms",
            baseline,
            "bare Bolt app p99",
            "≤ 1.5× baseline and < 100 ms",
            value <= 1.5 * baseline and value < 100,
            f"p99 per burst: bot {_ms(p99)}, bare Bolt {_ms(base_p99)}. CPU per command: bot "
            f"{bot_cpu * 1000:.1f} ms (ack, then the answer, in the same process), bare Bolt "
            f"{base_cpu * 1000:.2f} ms; each server has one CPU and {conc} requests in flight",
            bursts,
            p99,
        ),
        Row(
            ACK,
            "ack p50",
            median([percentile(r, 50) for r in bot_runs]),
            "ms",
            median([percentile(r, 50) for r in base_runs]),
            "bare Bolt app p50",
            runs=bursts,
        ),
        Row(
            ACK,
            "slowest ack",
            slowest,
            "ms",
            max(max(r) for r in base_runs),
            "bare Bolt app slowest",
            "< 3,000 ms, every ack HTTP 200",
            slowest < 3000 and not failed,
            f"{failed} of {n * bursts} acks were not HTTP 200",
            bursts,
        ),
        Row(
            ACK,
            "commands answered in a thread",
            answered,
            "",
            n * bursts,
            "commands sent",
            f"all {n * bursts}",
            answered == n * bursts,
            "an answer = parent with the verdict and buttons + at least one thread reply, "
            "counted at the Slack emulator",
            bursts,
        ),
    ]


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " ms"


def _require_ok(answers: list[tuple[Answer, float]], who: str) -> None:
    bad = [a for a, _ in answers if a.status != 200]
    if bad:
        raise BenchError(
            f"{who}: {len(bad)} commands were not acked (first: {bad[0].status} "
            f"{bad[0].body[:200]})"
        )


# ---------------------------------------------------------------- group 2
def incident_storm(scale: Scale, work: Path, results: Results) -> None:
    from emulators import make_tls

    from bench.kube_server import FastKubeEmulator

    results.methods[STORM] = METHOD_STORM
    n = scale.storm
    tls = make_tls(work / "storm-tls")
    emu = FastKubeEmulator(
        certfile=str(tls.server_pem), **{k: list(v) for k, v in objects(20, 30).items()}
    ).start()
    slack = Slack(work)
    bot = None
    try:
        kubeconfig = emu.write_kubeconfig(work / "storm-kubeconfig", ca_file=str(tls.ca_pem))
        config = {
            "cache_ttl_seconds": 300,
            "clusters": {"storm": {"kubernetes": {"kubeconfig": str(kubeconfig)}}},
        }
        bot = BotProcess(work / "bot-storm", config, slack)
        emu.reset_counts()
        channels = _channels("STORM", n)
        answers = burst(bot.base, n, n, storm_text, channels.__getitem__)
        sent = [t for _, t in answers]
        window = max(t + a.elapsed_s for a, t in answers) - min(sent)
        _require_ok(answers, "the bot")
        state = slack.wait_answered(channels, timeout=180)
        answered = sum(1 for s in state.values() if s.get("answered"))
        fresh = [
            state[c]["last_at"] - t
            for c, t in zip(channels, sent, strict=True)
            if state[c].get("answered")
        ]
        reads = _list_reads(emu)

        cached = []
        for i in range(scale.cached_runs):
            channel = f"CCACHED{i:04d}"
            ((_, t),) = burst(bot.base, 1, 1, storm_text, [channel].__getitem__)
            done = slack.wait_answered([channel], timeout=60)[channel]
            if done.get("answered"):
                cached.append(done["last_at"] - t)
        reads_after = _list_reads(emu)
    finally:
        if bot is not None:
            bot.stop()
        slack.stop()
        emu.stop()

    most = max(reads.values(), default=0)
    counts = ", ".join(f"{p.rsplit('/', 1)[-1]} {c}" for p, c in sorted(reads.items()))
    results.rows += [
        Row(
            STORM,
            f"cluster reads for {n} identical commands",
            most,
            "reads of each list",
            target="exactly 1",
            met=bool(reads) and set(reads.values()) == {1} and reads_after == reads,
            notes=f"sent within {window:.2f} s; requests per list at the API emulator: {counts}; "
            f"no request during the {len(cached)} cached answers after it: "
            f"{'yes' if reads_after == reads else 'NO'}",
        ),
        Row(
            STORM,
            "storm commands answered in a thread",
            answered,
            "",
            n,
            "commands sent",
            f"all {n}",
            answered == n,
        ),
        Row(
            STORM,
            "answer served from the cache",
            median(cached) * 1000 if cached else None,
            "ms",
            median(fresh) * 1000 if fresh else None,
            "storm answer, one shared read",
            notes=f"command sent → last Slack post of the answer; {len(cached)} runs",
            runs=len(cached),
            samples=[c * 1000 for c in cached],
        ),
    ]


def _list_reads(emu: Any) -> dict[str, int]:
    """Reads per list: requests for its first page (later pages carry `continue`)."""
    out: dict[str, int] = {}
    for r in list(emu.requests):
        p = r.path
        is_list = (p.startswith("/api/") and p.count("/") >= 3) or p.count("/") >= 4
        if is_list and not r.query.get("continue"):
            out[p] = out.get(p, 0) + 1
    return out


__all__ = ["ack_latency", "incident_storm"]
