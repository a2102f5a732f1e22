"""The bot as Slack sees it, for tests: snapshot-backed clusters, a config file, the real Bolt
app behind the production WSGI server (waitress) on 127.0.0.1, its WebClient pointed at the
Slack emulator, and a real valkey server. Tests talk to it only over HTTP."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from builders import az_cluster, node, pod, service, write_snapshot
from slack_client import SIGNING_SECRET, SlackClient
from slack_emulator import BOT_TOKEN, SlackEmulator

from bot.app import create_app
from bot.config import load_config
from bot.deps import Deps, Settings, build_deps
from bot.limits import LimitSettings
from bot.serve import HttpServer, build_wsgi
from bot.slack_send import make_web_client
from bot.store import connect

OPS = "CFAKEOPS1"
OTHER = "CFAKERANDOM"
ALICE = "UFAKEALICE"
MALLORY = "UFAKEMALLORY"
BOB = "UFAKEBOB"


def make_clusters(root: Path) -> dict[str, Any]:
    """prod: the operators' network is outside the authorized ranges (critical);
    staging: healthy; vault: only #ops and Alice; groups: only the sre user group."""
    write_snapshot(
        root / "prod",
        cluster=az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["203.0.113.0/24"]}),
        nodes=[node()],
        pods=[pod("web-0", "shop", labels={"app": "web"}, ports=[("http", 8080)])],
        services=[service("web", "shop", selector={"app": "web"})],
    )
    write_snapshot(
        root / "staging", cluster=az_cluster(name="staging", rg="rg-staging"), nodes=[node()]
    )
    write_snapshot(root / "vault", cluster=az_cluster(name="vault", rg="rg-vault"))
    write_snapshot(root / "groups", cluster=az_cluster(name="groups", rg="rg-groups"))
    return {
        "cache_ttl_seconds": 300,
        "clusters": {
            "prod": {"snapshot": "prod", "operator_networks": ["198.51.100.0/24"]},
            "staging": {"snapshot": "staging"},
            "vault": {"snapshot": "vault", "allow": {"channels": [OPS], "users": [ALICE]}},
            "groups": {"snapshot": "groups", "allow": {"usergroups": ["sre"]}},
        },
        "digests": [
            {
                "name": "morning",
                "channel": OPS,
                "cron": "0 8 * * 1-5",
                "clusters": ["prod", "staging"],
            }
        ],
    }


NO_LIMITS = LimitSettings(10_000, 10_000, 10_000, 10_000)


class Bot:
    def __init__(
        self,
        tmp: Path,
        redis_url: str,
        *,
        config: dict[str, Any] | None = None,
        settings: Settings | None = None,
        source_factory: Any = None,
        config_file: Path | None = None,
        limits: LimitSettings = NO_LIMITS,
    ) -> None:
        """`limits`: none by default (tests of other things send many commands as one user);
        the flood tests pass the production `LimitSettings()`."""
        self.tmp = tmp
        if config_file is None:
            config_file = tmp / "aksdiag.yaml"
            config_file.write_text(yaml.safe_dump(config or make_clusters(tmp)))
        self.config = load_config(config_file)
        self.slack = SlackEmulator().start()
        self.slack.usergroups = [{"id": "SFAKESRE", "handle": "sre", "name": "SRE"}]
        self.slack.members = {"SFAKESRE": [BOB]}
        self.redis_url = redis_url
        self.deps: Deps = build_deps(
            self.config,
            connect(redis_url),
            make_web_client(BOT_TOKEN, self.slack.api_url),
            settings=settings or Settings(workers=24, run_workers=4, run_timeout_s=20),
            source_factory=source_factory,
        )
        assert self.deps.limits is not None
        self.deps.limits.settings = limits
        self.app = create_app(self.deps, signing_secret=SIGNING_SECRET)
        self.server = HttpServer(build_wsgi(self.deps, self.app, SIGNING_SECRET)).start()
        self.base = f"http://127.0.0.1:{self.server.port}"
        self.client = SlackClient(self.base)
        self._tokens = 0

    def stop(self) -> None:
        self.server.stop()
        self.deps.close()
        self.slack.stop()

    # helpers ------------------------------------------------------------------------------
    def response_url(self) -> tuple[str, str]:
        self._tokens += 1
        token = f"T{self._tokens:04d}"
        return token, self.slack.response_url(token)

    def command(self, text: str, **kw: Any) -> Any:
        return self.client.command(text, **kw)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples matching `labels`, read from /metrics."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
            if not m:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def finished_parents(
        self, channel: str = OPS, count: int = 1, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Wait for `count` top-level answers: a verdict (an actions block) and thread replies."""

        def done() -> list[dict[str, Any]]:
            msgs = [
                m
                for m in self.slack.top_level(channel)
                if _has_buttons(m) and self.slack.replies(channel, m["ts"])
            ]
            return msgs if len(msgs) >= count else []

        self.slack.wait_for(done, timeout)
        self.settle()
        return self.slack.wait_for(done, timeout)

    def only_the_sentinel_runs(self) -> bool:
        """After requests that must have started nothing: send a valid command and wait for
        its answer. A wrongly accepted earlier request was handed off first and had that
        whole run to show itself, however loaded the machine; then only the sentinel ran."""
        self.command("apiserver staging")
        parents = self.finished_parents()
        return (
            len(parents) == 1
            and "`apiserver staging`" in block_text(parents[0])
            and self.metric("aksdiag_cluster_collections_total") == 1
            and len(self.slack.top_level()) == 1
        )

    def settle(self, quiet_s: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the bot has posted nothing for `quiet_s` (an answer's thread follows its
        first message: the parent is posted first, then its replies)."""
        deadline = time.monotonic() + timeout
        seen = len(self.slack.calls)
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = len(self.slack.calls)
            if now == seen:
                return
            seen = now


def _has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks") or [])


def block_text(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, joined."""
    out = []
    for b in message.get("blocks") or []:
        if isinstance(b.get("text"), dict):
            out.append(b["text"].get("text", ""))
        for e in b.get("elements") or []:
            if isinstance(e, dict):
                t = e.get("text")
                out.append(t.get("text", "") if isinstance(t, dict) else str(t or ""))
    return "\n".join(out)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of a message's buttons."""
    return {
        e["action_id"]: e.get("value", "")
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements") or []
    }
