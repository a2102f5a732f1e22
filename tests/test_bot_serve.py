"""`aksdiag serve` as the platform team runs it: health, readiness and metrics endpoints, JSON
logs with request ids and no secrets, HTTP mode end to end as a real process."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml
from bot_harness import OPS, block_text, make_clusters
from slack_client import SIGNING_SECRET, SlackClient
from slack_emulator import BOT_TOKEN, SlackEmulator

from bot.logs import JsonFormatter, request_context

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["bot_fixtures"]


def test_health_readiness_and_metrics_endpoints(bot):
    assert bot.get("/healthz") == (200, '{"status":"ok"}')
    status, body = bot.get("/readyz")
    assert status == 200 and json.loads(body) == {"status": "ok", "redis": "ok", "slack": "ok"}
    bot.command("apiserver prod")
    bot.finished_parents()
    status, text = bot.get("/metrics")
    assert status == 200
    for name in (
        "aksdiag_runs_total",
        "aksdiag_run_duration_seconds_bucket",
        "aksdiag_cache_hits_total",
        "aksdiag_singleflight_joins_total",
        "aksdiag_slack_api_errors_total",
        "aksdiag_runs_in_flight",
        "aksdiag_cluster_collections_total",
    ):
        assert name in text
    assert bot.metric("aksdiag_runs_total", scenario="apiserver", outcome="fresh") == 1
    assert bot.get("/nope")[0] == 404


def test_readiness_fails_when_slack_cannot_be_reached(bot):
    bot.slack.fail("auth.test", "invalid_auth")
    status, body = bot.get("/readyz")
    assert status == 503 and json.loads(body)["slack"].startswith("unreachable")


def test_json_logs_carry_the_request_id_and_never_a_secret(monkeypatch):
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with request_context("req123"):
            log.info("posting with %s and secret %s", BOT_TOKEN, SIGNING_SECRET)
            log.info(
                "redis at redis://:FAKEpassword123@cache.example:6380/0",
                extra={"fields": {"cluster": "prod", "token": BOT_TOKEN}},
            )
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req123", "req123"]
    assert lines[1]["cluster"] == "prod"
    text = stream.getvalue()
    for secret in (BOT_TOKEN, SIGNING_SECRET, "FAKEpassword123"):
        assert secret not in text


def _reader(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line)


def test_serve_runs_http_mode_end_to_end_as_a_process(tmp_path):
    config = make_clusters(tmp_path)
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(config))
    slack = SlackEmulator().start()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_"))
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        AKSDIAG_CONFIG=str(tmp_path / "aksdiag.yaml"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        port = None
        while port is None:
            line = lines.get(timeout=20)
            seen.append(line)
            if "aksdiag serving" in line:
                port = int(json.loads(line)["msg"].rsplit(":", 1)[1].split()[0])
        client = SlackClient(f"http://127.0.0.1:{port}")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            assert json.loads(resp.read()) == {"status": "ok", "redis": "ok", "slack": "ok"}
        ack = client.command("apiserver prod")
        assert ack.status == 200
        parent = slack.wait_for(
            lambda: [m for m in slack.top_level(OPS) if "CRITICAL" in block_text(m)], 20
        )[0]
        assert slack.replies(OPS, parent["ts"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        slack.stop()
    while not lines.empty():
        seen.append(lines.get())
    records = [json.loads(line) for line in seen if line.strip()]
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any("embedded valkey" in r["msg"] for r in records)
    assert all(BOT_TOKEN not in line and SIGNING_SECRET not in line for line in seen)
