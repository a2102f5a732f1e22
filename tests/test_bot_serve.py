"""`aksdiag serve` as the platform team runs it: health, readiness and metrics endpoints, JSON
logs with request ids and no secrets, HTTP mode end to end as a real process."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from bot_harness import OPS, block_text, make_clusters
from slack_client import SIGNING_SECRET, SlackClient
from slack_emulator import APP_TOKEN, BOT_TOKEN, SlackEmulator

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


class Served:
    """`aksdiag serve` as a child process against the Slack emulator."""

    def __init__(self, tmp_path: Path, **env_extra: str) -> None:
        (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(make_clusters(tmp_path)))
        self.slack = SlackEmulator().start()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_"))
        }
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_API_URL=self.slack.api_url,
            AKSDIAG_CONFIG=str(tmp_path / "aksdiag.yaml"),
        )
        env.update(env_extra)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(
            target=_reader, args=(self.proc.stderr, self._lines), daemon=True
        )
        self._reader.start()
        self.seen: list[str] = []
        self.port = 0
        deadline = time.monotonic() + 30
        while not self.port:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    self.slack.stop()
                    raise AssertionError(f"serve did not start: {''.join(self.seen)}") from None
                continue
            self.seen.append(line)
            if "aksdiag serving" in line:
                self.port = int(json.loads(line)["msg"].rsplit(":", 1)[1].split()[0])

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def status(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> list[dict]:
        """SIGTERM, a clean exit, and the log records it wrote."""
        try:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=20) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.slack.stop()
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return [json.loads(line) for line in self.seen if line.strip()]


def test_serve_runs_http_mode_end_to_end_as_a_process(tmp_path):
    served = Served(tmp_path, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    slack = served.slack
    try:
        assert served.get("/readyz") == {"status": "ok", "redis": "ok", "slack": "ok"}
        ack = SlackClient(f"http://127.0.0.1:{served.port}").command("apiserver prod")
        assert ack.status == 200
        parent = slack.wait_for(
            lambda: [m for m in slack.top_level(OPS) if "CRITICAL" in block_text(m)], 20
        )[0]
        assert slack.wait_for(lambda: slack.replies(OPS, parent["ts"]), 20)  # the causes follow
    finally:
        records = served.stop()
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any("embedded valkey" in r["msg"] for r in records)
    answered = [r for r in records if r["msg"].startswith("answered apiserver on prod")]
    assert answered and answered[0]["request_id"] and answered[0]["verdict"] == "critical"
    assert all(BOT_TOKEN not in line and SIGNING_SECRET not in line for line in served.seen)


def test_serve_runs_socket_mode_when_an_app_token_is_set(tmp_path):
    served = Served(tmp_path, SLACK_APP_TOKEN=APP_TOKEN)
    slack = served.slack
    try:
        slack.wait_for(lambda: slack.socket_connected, 20)
        assert served.get("/healthz") == {"status": "ok"}
        payload = {
            "team_id": "TFAKE0001",
            "channel_id": OPS,
            "user_id": "UFAKEALICE",
            "command": "/aksdiag",
            "text": "apiserver prod",
            "response_url": slack.response_url("sock"),
            "trigger_id": "1.2.FAKE",
        }
        slack.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        slack.socket_send(
            {
                "envelope_id": "env-2",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {**payload, "text": "apiservr prod"},
            }
        )
        acks = slack.wait_for(lambda: len(slack.socket_acks) >= 2 and slack.socket_acks, 20)
        assert acks
        by_id = {a["envelope_id"]: a for a in acks}
        assert "Did you mean `apiserver`?" in by_id["env-2"]["payload"]["text"]
        parent = slack.wait_for(
            lambda: [m for m in slack.top_level(OPS) if "CRITICAL" in block_text(m)], 20
        )[0]
        assert slack.wait_for(lambda: slack.replies(OPS, parent["ts"]), 20)  # the causes follow
    finally:
        records = served.stop()
    assert any("Socket Mode" in r["msg"] for r in records)
    assert all(APP_TOKEN not in line and BOT_TOKEN not in line for line in served.seen)


def _refusing_url() -> str:
    """A loopback address where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


def test_serve_with_slack_unreachable_starts_and_readyz_says_so(tmp_path):
    """Slack down (or egress blocked) at start is not a configuration error: the process
    serves, /healthz is fine, /readyz names Slack until it answers."""
    served = Served(tmp_path, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=_refusing_url())
    try:
        assert served.get("/healthz") == {"status": "ok"}
        status, body = served.status("/readyz")
        assert status == 503 and body["redis"] == "ok"
        assert body["slack"].startswith("unreachable"), body
    finally:
        records = served.stop()
    assert any("Slack is unreachable" in r["msg"] for r in records)
    assert not any("Traceback" in line for line in served.seen)


def test_serve_in_socket_mode_with_slack_unreachable_keeps_trying(tmp_path):
    served = Served(tmp_path, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=_refusing_url())
    try:
        assert served.get("/healthz") == {"status": "ok"}
        assert served.status("/readyz")[0] == 503
    finally:
        records = served.stop()
    assert any("Socket Mode connects when Slack answers" in r["msg"] for r in records)
    assert not any("Traceback" in line for line in served.seen)


def test_serve_without_secrets_says_which_are_missing(tmp_path):
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(make_clusters(tmp_path)))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--config", str(tmp_path / "aksdiag.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in the environment" in done.stderr
