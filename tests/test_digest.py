"""Health digests over the wire: snapshot folders in, Slack Web API calls out (a recording
server on 127.0.0.1), state in a real valkey. Also home of the recording Slack server and the
config/snapshot helpers that test_scheduler.py shares."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import redis
import yaml
from blockkit import validate_message
from builders import az_cluster, write_snapshot
from slack_sdk import WebClient

from bot.cli import main
from bot.config import load_config
from bot.digest import DigestService
from bot.render.blocks import MAX_BLOCKS, MAX_MESSAGE_CHARS, MAX_SECTION
from bot.silences import SilenceStore

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "C0DIGEST01"
T_START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp()
OPERATORS = ["198.51.100.0/24"]


# A recording Slack Web API -------------------------------------------------------------------


class SlackRecorder:
    """`chat.postMessage`, `chat.update` and `auth.test` on 127.0.0.1:0, every call recorded.

    `fail(method, error, times, replies_only)` makes the next calls answer `ok: false`;
    `hold_replies()` makes thread replies hang (unrecorded) until `release()`, like a Slack
    that never got them from a replica that died."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.failures: list[dict[str, Any]] = []
        self.holding = False
        self.held = threading.Event()
        self.released = threading.Event()
        self._n = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                method = self.path.rsplit("/", 1)[-1]
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                answer = recorder.answer(method, body)
                if answer is None:
                    return
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, method: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if method == "auth.test":
            return {"ok": True, "user_id": "U0BOT", "bot_id": "B0BOT", "team_id": "T0TEAM"}
        reply = bool(body.get("thread_ts"))
        with self.lock:
            if method == "chat.postMessage" and reply and self.holding:
                self.held.set()
                hold = True
            else:
                hold = False
                for f in self.failures:
                    if f["method"] == method and f["times"] > 0 and (reply or not f["replies"]):
                        f["times"] -= 1
                        self.calls.append((f"{method}!failed", body))
                        return {"ok": False, "error": f["error"]}
                self._n += 1
                ts = body.get("ts") or f"{1_790_000_000 + self._n}.{self._n:06d}"
                self.calls.append((method, {**body, "_ts": ts}))
        if hold:
            self.released.wait(60)
            return None
        if method in ("chat.postMessage", "chat.update"):
            return {"ok": True, "channel": body.get("channel"), "ts": ts}
        return {"ok": False, "error": "unknown_method"}

    def fail(self, method: str, error: str, times: int = 1, replies_only: bool = False) -> None:
        with self.lock:
            self.failures.append(
                {"method": method, "error": error, "times": times, "replies": replies_only}
            )

    def hold_replies(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        self.released.set()

    @property
    def posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [b for m, b in self.calls if m == "chat.postMessage"]

    @property
    def parents(self) -> list[dict[str, Any]]:
        return [b for b in self.posts if not b.get("thread_ts")]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        return [b for b in self.posts if b.get("thread_ts") == ts]

    def __enter__(self) -> SlackRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def text_of(message: dict[str, Any]) -> str:
    """Everything a reader sees in a message: its blocks' texts, in order."""
    out = []
    for block in message.get("blocks") or []:
        if isinstance(block, str):
            block = json.loads(block)
        if "text" in block and isinstance(block["text"], dict):
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element, dict) and "text" in element:
                t = element["text"]
                out.append(t["text"] if isinstance(t, dict) else t)
    return "\n".join(out)


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


# Configs, snapshots, services ----------------------------------------------------------------


class FakeClock:
    def __init__(self, start: float = T_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(
    folder: Path, name: str = "prod", captured: float = T_START - 300, **cluster: Any
) -> Path:
    """A snapshot folder whose cluster.json says what the test needs (see az_cluster)."""
    return write_snapshot(
        folder, cluster=az_cluster(name=name, **cluster), captured_at=iso(captured)
    )


EXCLUDED: dict[str, Any] = {"apiServerAccessProfile": {"authorizedIpRanges": ["203.0.113.0/24"]}}
COVERED: dict[str, Any] = {
    "apiServerAccessProfile": {"authorizedIpRanges": ["203.0.113.0/24", "198.51.100.0/24"]}
}
STOPPED: dict[str, Any] = {"powerState": {"code": "Stopped"}}
# An upgrade that has run for six hours: stuck (a routine one is info, see cluster_state).
UPDATING: dict[str, Any] = {
    "provisioningState": "Updating",
    "systemData": {"lastModifiedAt": iso(T_START - 6 * 3600)},
}


def write_config(
    tmp_path: Path,
    clusters: dict[str, str],
    digests: list[dict[str, Any]] | None = None,
    name: str = "aksdiag.yaml",
) -> Path:
    """clusters: alias -> snapshot folder (relative to tmp_path or absolute)."""
    body = {
        "clusters": {
            alias: {"snapshot": str(folder), "operator_networks": OPERATORS}
            for alias, folder in clusters.items()
        },
        "digests": digests
        if digests is not None
        else [
            {
                "name": "morning",
                "channel": CHANNEL,
                "cron": "0 8 * * 1-5",
                "timezone": "Europe/Lisbon",
                "clusters": list(clusters),
            }
        ],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


def service(
    config_path: Path,
    redis_url: str,
    slack: SlackRecorder,
    clock: FakeClock | None = None,
    **kw: Any,
) -> DigestService:
    kw = {"lease_s": 2, "poll_s": 0.02, "retry_backoff_s": 0.0, **kw}
    return DigestService(
        load_config(config_path),
        redis.Redis.from_url(redis_url),
        WebClient(token="xoxb-FAKE-0000-EXAMPLE", base_url=slack.url),
        clock=clock or FakeClock(),
        **kw,
    )


@pytest.fixture
def slack():
    with SlackRecorder() as rec:
        yield rec


@pytest.fixture
def two_clusters(tmp_path):
    snapshot(tmp_path / "prod", **EXCLUDED)
    snapshot(tmp_path / "stage", name="stage", **UPDATING)
    return write_config(tmp_path, {"prod": tmp_path / "prod", "stage": tmp_path / "stage"})


# Tests ---------------------------------------------------------------------------------------


def test_post_now_posts_one_parent_in_the_digest_channel_with_details_in_its_thread(
    two_clusters, redis_url, slack
):
    ts = service(two_clusters, redis_url, slack).post_now("morning", requested_by="U0ALICE")
    (parent,) = slack.parents
    assert parent["channel"] == CHANNEL
    text = text_of(parent)
    assert "Health digest `morning`" in text and "<@U0ALICE>" in text
    assert "*prod* — 1 critical · data 5m old" in text
    assert "*stage* — 1 warning · data 5m old" in text
    assert "First digest of this name" in text
    assert "1 finding(s) below warning left out" in text  # authorized-ip.disabled on stage
    replies = slack.replies(ts)
    assert replies and all(r["channel"] == CHANNEL for r in replies)
    for message in (parent, *replies):  # Block Kit limits, checked by slack_sdk.models
        validate_message({"text": message["text"], "blocks": blocks_of(message)})
    details = "\n".join(text_of(r) for r in replies)
    assert "apiserver.authorized-ip.client-excluded" in details
    assert "`/aksdiag health prod` for the full answer" in details  # one line per finding
    assert "cluster.provisioning-failed" in details
    assert details.index("*prod*") < details.index("*stage*")  # worst cluster first


def test_consecutive_digests_report_what_is_new_and_what_is_resolved(
    tmp_path, two_clusters, redis_url, slack
):
    svc = service(two_clusters, redis_url, slack)
    svc.post_now("morning")
    # prod: its ranges get fixed (resolved) and then someone stops it (new); stage unchanged.
    snapshot(tmp_path / "prod", **COVERED, **STOPPED)
    second = svc.post_now("morning")
    parent = text_of(slack.parents[-1])
    new_part = parent.split("*New*")[1].split("*Resolved*")[0]
    resolved_part = parent.split("*Resolved*")[1]
    assert "`cluster.stopped`" in new_part
    assert "cluster.provisioning-failed" not in new_part  # stage's warning is not new
    assert "`apiserver.authorized-ip.client-excluded`" in resolved_part
    assert "since the previous digest (Fri 20 Nov 08:00 Europe/Lisbon)" in parent
    details = "\n".join(text_of(r) for r in slack.replies(second))
    assert "• :new: :red_circle: Cluster" in details
    assert parent.index("*New*") < parent.index("*prod* —")  # what changed comes first
    # A third digest with nothing changed says so, and posts no thread.
    third = svc.post_now("morning")
    assert "*Nothing changed*" in text_of(slack.parents[-1])
    assert slack.replies(third) == []


def test_a_cluster_that_cannot_be_read_is_named_and_its_findings_are_not_resolved(
    tmp_path, redis_url, slack
):
    snapshot(tmp_path / "prod", **EXCLUDED)
    (tmp_path / "hollow" / "k8s").mkdir(parents=True)  # a snapshot with nothing readable in it
    cfg = write_config(
        tmp_path,
        {"prod": tmp_path / "prod", "gone": tmp_path / "missing", "hollow": tmp_path / "hollow"},
    )
    svc = service(cfg, redis_url, slack)
    svc.post_now("morning")
    text = text_of(slack.parents[-1])
    assert (
        f":warning: *gone* — could not be read: snapshot folder {tmp_path / 'missing'} does not exist"
        in text
    )
    assert ":warning: *hollow* — could not be read: no data source could be read" in text
    assert "2 cluster(s) could not be read" in text
    # prod becomes unreadable: its finding is not "resolved", and not "new" when it is back.
    (tmp_path / "prod").rename(tmp_path / "prod-away")
    svc.post_now("morning")
    text = text_of(slack.parents[-1])
    assert ":warning: *prod* — could not be read" in text
    assert "*Resolved*" not in text and "client-excluded" not in text
    (tmp_path / "prod-away").rename(tmp_path / "prod")
    svc.post_now("morning")
    text = text_of(slack.parents[-1])
    assert "*prod* — 1 critical" in text and "*New*" not in text


def test_min_severity_and_silences_leave_findings_out_and_say_so(tmp_path, redis_url, slack):
    snapshot(
        tmp_path / "prod", **STOPPED
    )  # cluster.stopped (critical) + authorized-ip.disabled (info)
    snapshot(tmp_path / "stage", name="stage")  # authorized-ip.disabled (info)
    digests = [
        {
            "name": "all",
            "channel": CHANNEL,
            "cron": "0 8 * * *",
            "clusters": ["prod", "stage"],
            "min_severity": "info",
        },
        {
            "name": "loud",
            "channel": CHANNEL,
            "cron": "0 8 * * *",
            "clusters": ["prod", "stage"],
            "min_severity": "critical",
        },
    ]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod", "stage": tmp_path / "stage"}, digests)
    clock = FakeClock()
    svc = service(cfg, redis_url, slack, clock)
    svc.post_now("all")
    assert "*prod* — 1 critical, 1 info" in text_of(slack.parents[-1])
    svc.post_now("loud")
    text = text_of(slack.parents[-1])
    assert "*prod* — 1 critical" in text and ":large_green_circle: *stage* — all clear" in text
    assert "2 finding(s) below critical left out" in text

    SilenceStore(redis.Redis.from_url(redis_url), clock).add(
        "prod", "cluster.stopped", None, 7200, "planned stop for the weekend (CHG-42)", "U0BOB"
    )
    ts = svc.post_now("loud")
    text = text_of(slack.parents[-1])
    assert ":large_green_circle: *prod* — all clear" in text
    assert "1 silenced finding(s) left out" in text
    assert "*Resolved*" not in text  # silenced is not resolved
    details = "\n".join(text_of(r) for r in slack.replies(ts))
    assert "*Silenced on prod* (1)" in details
    assert "silenced by <@U0BOB> for 2h more: planned stop for the weekend (CHG-42)" in details

    clock.advance(7200 + 60)  # the silence ends: the finding is back, and not as "new"
    svc.post_now("loud")
    text = text_of(slack.parents[-1])
    assert "*prod* — 1 critical" in text and "*New*" not in text and "silenced" not in text


def test_quiet_mode_skips_a_green_unchanged_scheduled_digest_but_never_an_explicit_one(
    tmp_path, redis_url, slack
):
    snapshot(tmp_path / "prod", **COVERED)
    digests = [
        {
            "name": "quiet",
            "channel": CHANNEL,
            "cron": "* * * * *",
            "clusters": ["prod"],
            "quiet_when_green": True,
        }
    ]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod"}, digests)
    svc = service(cfg, redis_url, slack)
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert svc.run_scheduled("quiet", t0) is not None  # the first one posts
    assert svc.run_scheduled("quiet", t0 + timedelta(minutes=1)) is None  # green, unchanged
    assert len(slack.parents) == 1
    svc.post_now("quiet", requested_by="U0ALICE")  # asked for: always posted
    assert len(slack.parents) == 2
    snapshot(tmp_path / "prod", **EXCLUDED)  # something breaks: posted
    assert svc.run_scheduled("quiet", t0 + timedelta(minutes=2)) is not None
    assert "`apiserver.authorized-ip.client-excluded`" in text_of(slack.parents[-1])
    snapshot(tmp_path / "prod", **COVERED)  # fixed: green again, but a change worth saying
    assert svc.run_scheduled("quiet", t0 + timedelta(minutes=3)) is not None
    assert "*Resolved*" in text_of(slack.parents[-1])
    assert svc.run_scheduled("quiet", t0 + timedelta(minutes=4)) is None
    assert len(slack.parents) == 4


def test_one_fire_time_posts_once_across_replicas(two_clusters, redis_url, slack):
    replicas = [service(two_clusters, redis_url, slack) for _ in range(3)]
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    results: list[str | None] = []

    def fire(svc: DigestService, when: datetime) -> None:
        results.append(svc.run_scheduled("morning", when))

    # The same instant, written in different time zones by different replicas.
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo"))
    whens = [at, tokyo, at]
    threads = [threading.Thread(target=fire, args=(s, w)) for s, w in zip(replicas, whens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len([r for r in results if r]) == 1 and len(results) == 3
    assert len(slack.parents) == 1
    assert replicas[0].run_scheduled("morning", at) is None  # done: a late replica posts nothing
    assert replicas[1].run_scheduled("morning", at + timedelta(days=1)) is not None  # next slot
    assert len(slack.parents) == 2


def test_a_replica_that_dies_mid_digest_is_taken_over_without_a_second_parent(
    two_clusters, redis_url, slack
):
    at = "2026-11-23T08:00:00+00:00"
    script = (
        "import sys, datetime, redis\n"
        "from slack_sdk import WebClient\n"
        "from bot.config import load_config\n"
        "from bot.digest import DigestService\n"
        "svc = DigestService(load_config(sys.argv[1]), redis.Redis.from_url(sys.argv[2]),\n"
        "    WebClient(token='xoxb-FAKE-0000-EXAMPLE', base_url=sys.argv[3]), lease_s=1)\n"
        "svc.run_scheduled('morning', datetime.datetime.fromisoformat(sys.argv[4]))\n"
    )
    slack.hold_replies()  # replica A posts its parent, then hangs on the first reply...
    replica_a = subprocess.Popen(
        [sys.executable, "-c", script, str(two_clusters), redis_url, slack.url, at], cwd=ROOT
    )
    try:
        assert slack.held.wait(60), "replica A never reached its first thread reply"
    finally:
        replica_a.kill()  # ...and dies there: its lease is no longer renewed
        replica_a.wait()
    slack.release()
    (parent,) = slack.parents

    replica_b = service(two_clusters, redis_url, slack, lease_s=1)
    expected = len(replica_b.render("morning")[1])  # A's plan: the first digest, with a thread
    ts = replica_b.run_scheduled("morning", datetime.fromisoformat(at))
    assert ts is not None
    assert ts == parent["_ts"] and len(slack.parents) == 1  # B finished A's post
    assert len(slack.replies(ts)) == expected
    assert replica_b.run_scheduled("morning", datetime.fromisoformat(at)) is None


def test_slack_errors_are_retried_then_reported_in_the_channel(two_clusters, redis_url, slack):
    svc = service(two_clusters, redis_url, slack)
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    slack.fail("chat.postMessage", "internal_error", times=1)  # transient: retried
    assert svc.run_scheduled("morning", at) is not None
    assert len(slack.parents) == 1

    # permanent (nothing changed since the first digest: the parent is all it posts)
    slack.fail("chat.postMessage", "invalid_blocks", times=1)
    assert svc.run_scheduled("morning", at + timedelta(days=1)) is None
    failure = text_of(slack.parents[-1])
    assert (
        "*Health digest `morning`* for Tue 24 Nov 08:00 Europe/Lisbon could not be produced"
        in failure
    )
    assert (
        "Slack answered invalid_blocks" in failure and "aksdiag digest morning --print" in failure
    )
    assert svc.run_scheduled("morning", at + timedelta(days=1)) is None  # reported once
    assert len(slack.parents) == 2


def test_the_parent_stays_within_slack_limits_with_many_clusters(tmp_path, redis_url, slack):
    snapshot(tmp_path / "prod", **EXCLUDED)
    clusters = {f"c{i:02d}-{'x' * 40}": tmp_path / f"missing-{i}-{'y' * 200}" for i in range(60)}
    clusters["prod"] = tmp_path / "prod"
    cfg = write_config(tmp_path, clusters)
    service(cfg, redis_url, slack).post_now("morning")
    parent = slack.parents[-1]
    assert len(blocks_of(parent)) <= MAX_BLOCKS
    assert len(json.dumps(blocks_of(parent))) <= MAX_MESSAGE_CHARS
    assert "*prod* — 1 critical" in text_of(parent)  # the cluster with findings is still there
    replies = slack.replies(slack.parents[-1]["_ts"])
    assert len(replies) <= 6  # not a reply per unreadable cluster
    assert all(len(blocks_of(r)) <= MAX_BLOCKS for r in replies)
    assert "c59-" in "\n".join(text_of(r) for r in replies)  # every one is named in the thread
    for block in blocks_of(parent):
        if block.get("type") == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
    assert "61 cluster" not in text_of(parent) and "60 cluster(s) could not be read" in text_of(
        parent
    )


def test_unknown_digest_says_which_exist(two_clusters, redis_url, slack):
    from diagnostics.scenarios import UsageError

    with pytest.raises(UsageError, match=r"unknown digest `mornin`. Did you mean `morning`\?"):
        service(two_clusters, redis_url, slack).post_now("mornin")


def test_cli_print_renders_in_the_terminal_and_remembers_nothing(
    two_clusters, redis_url, slack, monkeypatch, capsys
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["digest", "morning", "--print", "--config", str(two_clusters)]) == 0
    out = capsys.readouterr().out
    assert "Health digest morning" in out and "prod" in out and "1 critical" in out
    assert "apiserver.authorized-ip.client-excluded" in out
    assert slack.calls == []
    # Printing did not count as the previous digest: the first post is still the first.
    service(two_clusters, redis_url, slack).post_now("morning")
    assert "First digest of this name" in text_of(slack.parents[-1])


def test_cli_posts_with_the_bot_token_and_explains_a_missing_one(
    two_clusters, redis_url, slack, monkeypatch, capsys
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["digest", "morning", "--config", str(two_clusters)]) == 3
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-FAKE-0000-EXAMPLE")
    monkeypatch.setenv("SLACK_API_URL", slack.url)
    assert main(["digest", "morning", "--config", str(two_clusters)]) == 0
    assert f"posted digest morning to {CHANNEL}" in capsys.readouterr().out
    assert len(slack.parents) == 1
    assert main(["digest", "evening", "--config", str(two_clusters)]) == 2
    assert "unknown digest" in capsys.readouterr().err


def test_no_digest_state_outlives_its_ttl_and_keys_are_per_digest(two_clusters, redis_url, slack):
    svc = service(two_clusters, redis_url, slack)
    svc.run_scheduled("morning", datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = sorted(r.keys("aksdiag:digest:*"))
    assert keys == [
        "aksdiag:digest:morning:2026-11-23T08:00+00:00:attempts",
        "aksdiag:digest:morning:2026-11-23T08:00+00:00:done",
        "aksdiag:digest:morning:previous",
    ]
    assert all(r.ttl(k) > 0 for k in keys)
