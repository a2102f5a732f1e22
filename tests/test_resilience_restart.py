"""No request silently disappears (issue 8, item 1): `aksdiag serve` killed with SIGKILL while a
diagnosis is in flight, and the process started after it (on the same Redis) tells the
requester in the thread — run id, failed parent, a Re-run button that works — with the run in
`history`. (That a live replica's run is left alone: test_inflight.py.)

The cluster is a kubeconfig cluster pointing at the Kubernetes emulator, whose pod list is
held back so the first process is killed mid-read. `ServeProcess` is shared with
test_security_secrets.py (real processes, JSON logs on stderr).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from bot_harness import OPS, block_text, buttons
from emulators import KubeEmulator
from emulators.sample import sample_objects
from slack_client import SIGNING_SECRET, SlackClient
from slack_emulator import BOT_TOKEN, SlackEmulator

ROOT = Path(__file__).resolve().parent.parent
RERUN = "aksdiag_rerun"


class ServeProcess:
    """`aksdiag serve` (HTTP mode) as a child process; its stderr JSON lines are kept."""

    def __init__(self, config: Path, slack: SlackEmulator, *args: str, **env_extra: str) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_", "AZURE_"))
        }
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            AKSDIAG_CONFIG=str(config),
            **{
                f"AKSDIAG_LIMIT_{k}": "10000"
                for k in (
                    "USER_IN_FLIGHT",
                    "CHANNEL_IN_FLIGHT",
                    "USER_PER_MINUTE",
                    "CHANNEL_PER_MINUTE",
                )
            },
            **env_extra,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._drained = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = 0
        for line in self._lines_until(lambda line: "aksdiag serving" in line, 30):
            self.port = int(json.loads(line)["msg"].rsplit(":", 1)[1].split()[0])
        self.client = SlackClient(f"http://127.0.0.1:{self.port}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def _lines_until(self, found: Any, timeout: float) -> list[str]:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no such log line within {timeout}s: {self.lines[-5:]}")
            if line is None:
                raise AssertionError(f"the process ended: {self.lines[-5:]}")
            self.lines.append(line)
            if found(line):
                return [line]

    def wait_log(self, text: str, timeout: float = 20) -> dict[str, Any]:
        for line in self.lines:
            if text in line:
                return json.loads(line)
        return json.loads(self._lines_until(lambda line: text in line, timeout)[0])

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM; the exit status. Every stderr line is in `lines` afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        while not self._drained and (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        if not self._drained and self.proc.stderr is not None:
            self.proc.stderr.close()  # the reader saw its end
        self._drained = True
        return self.proc.returncode

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]


def test_a_run_in_flight_when_the_process_is_killed_is_reported_by_the_next_one(
    tmp_path, tls, redis_url
):
    slack = SlackEmulator().start()
    k8s = KubeEmulator(certfile=str(tls.server_pem), **sample_objects()).start()
    procs: list[ServeProcess] = []
    try:
        held = k8s.fault("/api/v1/pods", delay=20.0)  # the first process dies while reading
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        config = tmp_path / "aksdiag.yaml"
        config.write_text(
            yaml.safe_dump({"clusters": {"shop": {"kubernetes": {"kubeconfig": str(kubeconfig)}}}})
        )
        env = dict(
            REDIS_URL=redis_url,
            AKSDIAG_LEASE_SECONDS="1",
            AKSDIAG_SWEEP_SECONDS="0.25",
            AKSDIAG_K8S_TIMEOUT="60",
            AKSDIAG_COLLECT_TIMEOUT="60",
            AKSDIAG_RETRIES="0",
        )
        first = ServeProcess(config, slack, **env)
        second = ServeProcess(config, slack, **env)  # another replica, alive all along
        procs += [first, second]
        ack = first.client.command("health shop", response_url=slack.response_url("t1"))
        assert ack.status == 200 and ack.body == ""
        run_id = first.wait_log('"msg": "slash command"')["request_id"]
        parent = slack.wait_for(lambda: slack.top_level(OPS))[0]
        assert "running" in parent["text"]
        slack.wait_for(lambda: held.hits >= 1)  # the cluster read is under way
        assert slack.replies(OPS, parent["ts"]) == [] and not slack.responses("t1")
        # That another replica's sweeps leave a live replica's run be, however long, is shown
        # by test_inflight.py with an injected clock rather than by sleeping here.
        assert second.stop() == 0
        first.kill()
        third = ServeProcess(config, slack, **env)  # the restarted pod
        procs.append(third)

        (told,) = slack.wait_for(lambda: slack.replies(OPS, parent["ts"]), 15)
        assert "restarted while running this" in told["text"] and f"`{run_id}`" in told["text"]
        assert "Re-run" in told["text"] and RERUN in buttons(told)
        updated = slack.wait_for(
            lambda: (
                slack.messages[(OPS, parent["ts"])]["updates"]
                and slack.messages[(OPS, parent["ts"])]
            )
        )
        assert ":x: failed" in block_text(updated) and RERUN in buttons(updated)
        assert third.wait_log("was interrupted")["run_id"] == run_id

        history = slack.response_url("t2")
        third.client.command("history shop", response_url=history)
        (listed,) = slack.wait_for(lambda: slack.responses("t2"))
        assert run_id in listed["text"] and "restarted while running this" in listed["text"]

        k8s.clear_faults()  # Re-run, as the message says: a fresh run answers in the thread
        value = buttons(told)[RERUN]
        third.client.action(RERUN, value, message_ts=parent["ts"], thread_ts=parent["ts"])
        verdicts = slack.wait_for(
            lambda: [
                m
                for m in slack.replies(OPS, parent["ts"])
                if "`health shop`" in block_text(m) and RERUN in buttons(m)
            ],
            20,
        )
        assert "*CRITICAL*" in block_text(verdicts[0])  # the sample cluster's IP allocation failure
        assert len(slack.top_level(OPS)) == 1  # the answer went to the thread, as asked
    finally:
        for proc in procs:
            proc.stop()
        k8s.stop()
        slack.stop()
