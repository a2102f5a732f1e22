"""The Slack Web API emulator of the test suite, in a process of its own for the benchmarks (so
that serving the bot's posts does not compete with the load generator for one interpreter
lock), with a deep listen backlog (Slack does not refuse connections) and one extra read-only
path for the harness: `GET /_bench/state` answers, per channel, how many top-level messages
were posted, how many of them were answered (a verdict with buttons and at least one thread
reply), the thread replies, and when the last post or update arrived (`time.monotonic()`,
comparable across processes on Linux).

    python -m bench.slack_server     # prints {"api_url": ..., "port": ...}; stops when stdin closes
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any

from slack_emulator import SlackEmulator

import bench.generate  # noqa: F401  (puts tests/ on sys.path)


class BenchSlack(SlackEmulator):
    listen_backlog = 256

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/_bench/state":
            self._send(h, 200, self.state())
            return
        super()._handle(h)

    def state(self) -> dict[str, Any]:
        with self._lock:
            messages = list(self.messages.values())
            calls = [(c.method, str(c.params.get("channel", "")), c.at) for c in self.calls]
        out: dict[str, dict[str, Any]] = {}

        def entry(channel: str) -> dict[str, Any]:
            return out.setdefault(
                channel, {"parents": 0, "answered": 0, "replies": 0, "last_at": 0.0}
            )

        threads: dict[tuple[str, str], int] = {}
        for m in messages:
            if m.get("thread_ts"):
                key = (str(m["channel"]), str(m["thread_ts"]))
                threads[key] = threads.get(key, 0) + 1
                entry(key[0])["replies"] += 1
        for m in messages:
            if m.get("thread_ts"):
                continue
            e = entry(str(m["channel"]))
            e["parents"] += 1
            buttons = any(b.get("type") == "actions" for b in m.get("blocks") or [])
            if buttons and threads.get((str(m["channel"]), str(m["ts"]))):
                e["answered"] += 1
        for method, channel, at in calls:
            if method in ("chat.postMessage", "chat.update") and channel:
                e = entry(channel)
                e["last_at"] = max(e["last_at"], at)
        return {"channels": out, "calls": len(calls)}


def _main() -> None:
    slack = BenchSlack().start()
    sys.stdout.write(json.dumps({"api_url": slack.api_url, "port": slack.port}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    slack.stop()


if __name__ == "__main__":
    _main()
