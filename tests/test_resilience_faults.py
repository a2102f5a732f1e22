"""Faults (issue 8, item 1) the bot must ride out, over the wire: Redis down when the bot starts
and back later, Redis killed mid-run and restarted on the same port, and a Kubernetes API that
answers 500, answers too late or refuses connections — the Slack thread says what could not be
checked.

Already covered elsewhere and not repeated here:
- Redis dying mid-run still answers, uncached, logged once:
  `test_bot_singleflight.py::test_redis_dying_mid_run_still_answers_uncached_and_logs_once`
  (this file adds the recovery when it comes back);
- each Kubernetes failure at the collector: `test_live_k8s.py` (`test_500s_are_retried_with_
  backoff_then_reported`, `test_a_slow_server_times_out_with_a_reason`,
  `test_a_server_that_is_down_yields_a_report_that_says_so`, the circuit breaker);
- ARM 429 with Retry-After retried: `test_live_arm.py::test_arm_429_with_retry_after_is_retried_by_the_sdk`;
- Slack 429 retried and `not_in_channel` answered ephemerally: `test_bot_errors.py::
  test_rate_limited_calls_are_retried_after_retry_after`, `test_not_in_channel_asks_to_invite_the_bot_via_response_url`;
- a process restarted mid-run: `test_resilience_restart.py`.
"""

from __future__ import annotations

import logging
import socket
import time

import yaml
from bot_harness import OPS, Bot, block_text, make_clusters
from emulators import KubeEmulator
from emulators.sample import sample_objects
from slack_emulator import SlackEmulator
from test_resilience_restart import ServeProcess

from bot.redis_embedded import EmbeddedRedis

pytest_plugins = ["bot_fixtures"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(slack: SlackEmulator, count: int) -> list[dict]:
    """The first `count` finished parents (a verdict with buttons), oldest first."""

    def done() -> list[dict]:
        finished = [
            m
            for m in slack.top_level(OPS)
            if any(b.get("type") == "actions" for b in m.get("blocks") or [])
        ]
        return finished if len(finished) >= count else []

    return slack.wait_for(done, 20)[:count]


def _answer_until_cached(ask, slack: SlackEmulator, start: int, within_s: float = 15) -> int:
    """Ask again until an answer comes from the cache (after Redis returned, the bot skips it
    for a short cool-down, then caches again); the number of answers so far."""
    deadline = time.monotonic() + within_s
    n = start
    while time.monotonic() < deadline:
        n += 1
        ask()
        if ":recycle: cached" in block_text(_answers(slack, n)[-1]):
            return n
        time.sleep(0.2)
    raise AssertionError(f"no answer came from the cache within {within_s}s of Redis returning")


def test_redis_down_at_start_answers_uncached_and_readyz_says_so_then_recovers(tmp_path):
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(make_clusters(tmp_path)))
    port = _free_port()  # nothing listens there yet
    password = "FAKE-redis-EXAMPLE-pass"
    slack = SlackEmulator().start()
    served = ServeProcess(
        tmp_path / "aksdiag.yaml", slack, REDIS_URL=f"redis://:{password}@127.0.0.1:{port}/0"
    )
    redis = None
    try:
        status, body = served.get("/readyz")
        assert status == 503 and body["redis"].startswith("unreachable") and body["slack"] == "ok"
        for n in (1, 2):  # the same question twice: both answered, neither from a cache
            served.client.command("apiserver prod")
            parent = _answers(slack, n)[-1]
            assert "*CRITICAL*" in block_text(parent) and "cached" not in block_text(parent)
        assert served.get("/healthz") == (200, {"status": "ok"})

        redis = EmbeddedRedis(port=port, password=password).start()  # back on the same address
        assert served.get("/readyz") == (200, {"status": "ok", "redis": "ok", "slack": "ok"})
        _answer_until_cached(lambda: served.client.command("apiserver prod"), slack, 2)
        assert served.wait_log("Redis is reachable again")
    finally:
        served.stop()
        slack.stop()
        if redis is not None:
            redis.stop()
    down = [r for r in served.records() if r["msg"].startswith("Redis unavailable")]
    assert len(down) == 1, "an outage is logged once, not once per request"


def test_redis_killed_mid_run_then_restarted_on_its_port_caches_again(bot, redis_server, caplog):
    caplog.set_level(logging.INFO, logger="bot.runs")
    port = redis_server.port
    gate = bot.slack.hold("chat.postMessage")
    bot.command("apiserver prod")
    assert gate.arrived.wait(10)  # the bot is posting its first message: Redis dies now
    redis_server.stop()
    gate.release()
    (parent,) = bot.finished_parents()
    assert "*CRITICAL*" in block_text(parent) and "cached" not in block_text(parent)

    restarted = EmbeddedRedis(port=port, password=redis_server.password).start()
    try:
        n = _answer_until_cached(lambda: bot.command("apiserver prod"), bot.slack, 1)
        bot.command("apiserver prod")  # and the next one too
        assert ":recycle: cached" in block_text(_answers(bot.slack, n + 1)[-1])
        assert bot.get("/readyz")[0] == 200
        back = [r for r in caplog.records if "Redis is reachable again" in r.getMessage()]
        assert len(back) == 1
    finally:
        restarted.stop()


def test_kubernetes_api_failures_are_named_in_the_thread(tmp_path, redis_url, tls, monkeypatch):
    """500s on pods, a services list that answers too late, and a cluster whose API server
    refuses connections: every answer arrives and says what could not be checked and why."""
    for name, value in {
        "AKSDIAG_RETRIES": "1",
        "AKSDIAG_BACKOFF": "0.01",
        "AKSDIAG_K8S_TIMEOUT": "0.5",
        "AKSDIAG_CONNECT_TIMEOUT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    with KubeEmulator(certfile=str(tls.server_pem), **sample_objects()) as k8s:
        k8s.fault("/api/v1/pods", 500)
        k8s.fault("/api/v1/services", delay=3.0)
        flaky = k8s.write_kubeconfig(tmp_path / "flaky.kubeconfig", ca_file=str(tls.ca_pem))
        gone = KubeEmulator(certfile=str(tls.server_pem)).start()
        down = gone.write_kubeconfig(tmp_path / "down.kubeconfig", ca_file=str(tls.ca_pem))
        down_port = gone.port
        gone.stop()  # nothing listens there any more
        config = {
            "clusters": {
                "flaky": {"kubernetes": {"kubeconfig": str(flaky)}},
                "down": {"kubernetes": {"kubeconfig": str(down)}},
            }
        }
        bot = Bot(tmp_path, redis_url, config=config)
        try:
            bot.command("service flaky shop/web")
            bot.command("service down shop/web")
            parents = bot.finished_parents(count=2, timeout=20)
        finally:
            answers = {
                ("flaky" if "`service flaky shop/web`" in block_text(p) else "down"): "\n".join(
                    block_text(r) for r in bot.slack.replies(OPS, p["ts"])
                )
                for p in bot.finished_parents(count=2, timeout=20)
            }
            bot.stop()
    assert all("source(s) not checked" in block_text(p) for p in parents)
    assert "Not checked:" in answers["flaky"]
    assert "pods: the API server is overloaded or failing: HTTP 500 2 times" in answers["flaky"]
    assert "services: timed out after 0.5 s" in answers["flaky"]
    assert "EndpointSlices" not in answers["flaky"].split("Not checked:")[1]  # read fine
    unreachable = f"API server unreachable: connection refused (127.0.0.1:{down_port})"
    assert f"services: {unreachable}" in answers["down"]
    assert f"pods: {unreachable}" in answers["down"]
