"""What the bot keeps in Redis, under which keys, in which form (docs/caching.md).

`<rk>` is `request_key(cluster, scenario, arguments)`: identical requests map to one key.
- `aksdiag:report:<rk>`    the cached report (`Report.to_dict`), TTL = cache_ttl_seconds
- `aksdiag:result:<rk>`    the last run's report or error and its run id, for those who waited
- `aksdiag:run:<rk>`       a redis-py `Lock`: the run in flight, its token the run id
- `aksdiag:history:<cluster>`  the latest run records (a capped list)
- `aksdiag:seen:<kind>:<id>`   Slack deliveries already handled (retries are dropped)

Every value is JSON. Nothing here decides anything: bot.runs does.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from redis import Redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from diagnostics.model import Report

PREFIX = "aksdiag"
RESULT_TTL_S = 300
HISTORY_KEEP = 50


def connect(url: str) -> Redis:
    """A client with short timeouts: a Redis outage must cost a request milliseconds, not
    minutes (bot.runs then answers uncached)."""
    return Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def request_key(cluster: str, scenario: str, arguments: dict[str, Any]) -> str:
    """`cluster:scenario:hash(arguments)`: identical requests map to one key."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"{cluster}:{scenario}:{digest}"


@dataclass(frozen=True, slots=True)
class Cached:
    report: Report
    run_id: str
    stored_at: float


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished run left for the requests that waited on it: a report or an error."""

    run_id: str
    report: Report | None = None
    error: str | None = None


@dataclass(slots=True)
class RunRecord:
    """One answered request, for `history`."""

    run_id: str
    cluster: str
    scenario: str
    arguments: dict[str, Any] = field(default_factory=dict)
    user: str = ""
    channel: str = ""
    at: float = 0.0
    outcome: str = ""  # fresh, cached, joined, failed, timeout
    verdict: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    duration_s: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Store:
    """Typed access to the keys above over one redis-py client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # reports ------------------------------------------------------------------------------
    def get_report(self, key: str) -> Cached | None:
        raw = self.redis.get(f"{PREFIX}:report:{key}")
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Cached(Report.from_dict(data["report"]), data["run_id"], float(data["stored_at"]))

    def put_report(
        self, key: str, report: Report, run_id: str, stored_at: float, ttl_s: int
    ) -> None:
        body = {"report": report.to_dict(), "run_id": run_id, "stored_at": stored_at}
        self.redis.set(f"{PREFIX}:report:{key}", orjson.dumps(body), ex=ttl_s)

    # singleflight -------------------------------------------------------------------------
    def run_lock(self, key: str, timeout_s: float, poll_s: float) -> Lock:
        """The lock of the run in flight for `key`; acquire it with the run id as token."""
        name = f"{PREFIX}:run:{key}"
        return Lock(self.redis, name, timeout=timeout_s, sleep=poll_s, thread_local=False)

    def release_run(self, key: str, run_id: str) -> None:
        """Release the run lock of `key` if `run_id` still holds it (expired, or released by
        the sweeper for a dead replica: nothing to do)."""
        with suppress(LockNotOwnedError):
            Lock(self.redis, f"{PREFIX}:run:{key}").do_release(run_id)

    def put_result(self, key: str, result: RunResult) -> None:
        body = {
            "run_id": result.run_id,
            "report": result.report.to_dict() if result.report else None,
            "error": result.error,
        }
        self.redis.set(f"{PREFIX}:result:{key}", orjson.dumps(body), ex=RESULT_TTL_S)

    def get_result(self, key: str) -> RunResult | None:
        raw = self.redis.get(f"{PREFIX}:result:{key}")
        if raw is None:
            return None
        data = orjson.loads(raw)
        report = Report.from_dict(data["report"]) if data.get("report") else None
        return RunResult(data["run_id"], report, data.get("error"))

    # history ------------------------------------------------------------------------------
    def add_record(self, record: RunRecord) -> None:
        key = f"{PREFIX}:history:{record.cluster}"
        pipe = self.redis.pipeline()
        pipe.lpush(key, orjson.dumps(record.to_dict()))
        pipe.ltrim(key, 0, HISTORY_KEEP - 1)
        pipe.execute()

    def history(self, cluster: str, limit: int = 10) -> list[RunRecord]:
        raw = self.redis.lrange(f"{PREFIX}:history:{cluster}", 0, limit - 1)
        return [RunRecord.from_dict(orjson.loads(item)) for item in raw]

    # Slack retries ------------------------------------------------------------------------
    def first_seen(self, kind: str, ident: str, ttl_s: int = 3600) -> bool:
        """True the first time (kind, ident) is seen across every replica."""
        return bool(self.redis.set(f"{PREFIX}:seen:{kind}:{ident}", "1", nx=True, ex=ttl_s))
