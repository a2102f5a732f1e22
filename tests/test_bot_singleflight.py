"""Several requesters, several replicas, one Redis: one cluster read per identical request,
every requester answered; Redis dying mid-run costs the cache, never the answer; a run that
hangs is cut off and reported."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from bot_harness import OPS, Bot, block_text, make_clusters

from bot.deps import Settings

pytest_plugins = ["bot_fixtures"]


def test_ten_identical_concurrent_commands_read_the_cluster_once_and_all_get_answers(bot):
    with ThreadPoolExecutor(10) as pool:
        acks = list(pool.map(lambda _: bot.command("health prod"), range(10)))
    assert [a.status for a in acks] == [200] * 10
    parents = bot.finished_parents(count=10)
    assert all("`health prod`" in block_text(p) for p in parents)
    assert all(bot.slack.replies(OPS, p["ts"]) for p in parents)
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 1
    assert bot.metric("aksdiag_runs_total", outcome="fresh") == 1
    assert (
        bot.metric("aksdiag_runs_total", outcome="joined")
        + bot.metric("aksdiag_runs_total", outcome="cached")
        == 9
    )


def test_two_replicas_on_one_redis_share_one_run(tmp_path, redis_url):
    a = Bot(tmp_path / "a", redis_url, config=make_clusters(_mkdir(tmp_path / "a")))
    b = Bot(tmp_path / "b", redis_url, config=make_clusters(_mkdir(tmp_path / "b")))
    try:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda i: (a if i % 2 else b).command("pod-ip prod"), range(10)))
        a.finished_parents(count=5)
        b.finished_parents(count=5)
        reads = a.metric("aksdiag_cluster_collections_total") + b.metric(
            "aksdiag_cluster_collections_total"
        )
        assert reads == 1
    finally:
        a.stop()
        b.stop()


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_redis_dying_mid_run_still_answers_uncached_and_logs_once(bot, redis_server, caplog):
    caplog.set_level(logging.INFO)
    gate = bot.slack.hold("chat.postMessage")
    bot.command("apiserver prod")
    assert gate.arrived.wait(10)  # the bot is posting its parent message: Redis dies now
    redis_server.stop()
    gate.release()
    (parent,) = bot.finished_parents()
    assert "*CRITICAL*" in block_text(parent) and "cached" not in block_text(parent)
    bot.command("apiserver staging")
    bot.command("apiserver prod")
    bot.finished_parents(count=3)
    down = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(down) == 1
    ready, body = bot.get("/readyz")
    assert ready == 503 and '"redis": "unreachable' in body


class BlockedSource:
    """A cluster whose read never finishes (until the test ends)."""

    def __init__(self, label: str, release: threading.Event) -> None:
        self.label = label
        self._release = release

    def collect(self, sources, args, *, fresh=False):
        self._release.wait(10)
        raise TimeoutError("released")


def test_a_hung_run_is_cut_off_and_the_thread_says_so(tmp_path, redis_url):
    release = threading.Event()
    b = Bot(
        tmp_path,
        redis_url,
        settings=Settings(run_timeout_s=0.5),
        source_factory=lambda alias, cluster, config: BlockedSource(alias, release),
    )
    try:
        b.command("apiserver prod")
        # it fails within the direct-post window: one message says so, with the run id
        (parent,) = b.slack.wait_for(
            lambda: [m for m in b.slack.top_level(OPS) if "failed" in m["text"]]
        )
        said = block_text(parent)
        assert "did not finish within 0.5s" in said, said
        assert "run `" in said.lower() or "run id" in said.lower(), said
        assert b.metric("aksdiag_runs_total", outcome="timeout") == 1
    finally:
        release.set()
        b.stop()


def test_a_slow_slack_api_never_delays_acks(bot):
    """With chat.postMessage taking 0.5 s, work held on Bolt's listener threads would push
    later acks past Slack's 3 s (Bolt then answers 404): every ack must still be a 200."""
    bot.slack.latency["chat.postMessage"] = 0.5
    with ThreadPoolExecutor(30) as pool:
        acks = list(
            pool.map(
                lambda i: bot.command(f"apiserver {'prod' if i % 2 else 'staging'}"), range(30)
            )
        )
    assert [a.status for a in acks] == [200] * 30
    assert all(a.body == "" for a in acks)
    bot.finished_parents(count=30, timeout=30)  # and every one is answered
