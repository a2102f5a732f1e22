"""The run service: from a validated request to a report, reading each cluster as rarely as
possible and never twice at once. The whole path is in docs/caching.md; in short:

- Reports are cached in Redis per cluster + scenario + arguments for `cache_ttl_seconds`.
- Singleflight: identical requests share one run, in this process (`Singleflight`, a Future)
  and across replicas (a redis-py `Lock` on the request; whoever waited on it reads the result
  the run left).
- `fresh` (Re-run) skips the cached report and asks the source for fresh reads.
- Each run has a timeout; runs execute on a pool of their own, sized explicitly.
- Redis failing never fails a diagnosis: the run goes on uncached, and the failure is logged
  once (then once more when Redis is back), not per request (`RedisGuard`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from redis import Redis
from redis.exceptions import RedisError

from bot.config import ClusterConfig, Config
from bot.executors import ContextExecutor
from bot.metrics import Metrics
from bot.store import Cached, RunRecord, RunResult, Store, request_key
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.cache import Singleflight
from diagnostics.collectors.snapshot_dir import SnapshotError
from diagnostics.model import Report
from diagnostics.runner import ClusterSource, run

log = logging.getLogger(__name__)
T = TypeVar("T")
SourceFactory = Callable[[str, ClusterConfig, Config], ClusterSource]
LOCK_MARGIN_S = 30


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A validated diagnosis request (see handlers.parse)."""

    scenario: str
    cluster: str
    args: ScenarioArgs = field(default_factory=ScenarioArgs)

    @property
    def key(self) -> str:
        return request_key(self.cluster, self.scenario, self.args.to_dict())


@dataclass(frozen=True, slots=True)
class Outcome:
    report: Report
    run_id: str  # the run that produced the report
    how: str  # fresh, cached or joined
    age_s: float | None = None  # for cached answers


class RunFailed(Exception):
    """A run could not produce a report; `reason` is shown to the user with the run id."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(reason)
        self.run_id = run_id
        self.reason = reason


class RunTimeout(RunFailed):
    pass


class RedisDown(Exception):
    """Redis could not be used for this call; the caller goes on without it."""


class RedisGuard:
    """Runs Redis calls; after a failure skips Redis for `cooldown_s` and logs only the change
    of state (down, back), so an outage writes two log lines, not one per request."""

    def __init__(self, metrics: Metrics, cooldown_s: float = 2.0) -> None:
        self._metrics = metrics
        self._cooldown = cooldown_s
        self._lock = threading.Lock()
        self._healthy = True
        self._skip_until = 0.0

    @property
    def healthy(self) -> bool:
        return self._healthy

    def call(self, fn: Callable[[], T]) -> T:
        if time.monotonic() < self._skip_until:
            raise RedisDown("redis skipped after a recent failure")
        try:
            out = fn()
        except RedisError as exc:
            self._metrics.redis_errors.inc()
            with self._lock:
                self._skip_until = time.monotonic() + self._cooldown
                if self._healthy:
                    self._healthy = False
                    log.error(
                        "Redis unavailable (%s: %s); answering uncached, without cross-replica "
                        "singleflight, until it is back",
                        type(exc).__name__,
                        exc,
                    )
            raise RedisDown(str(exc)) from exc
        if not self._healthy:
            with self._lock:
                if not self._healthy:
                    self._healthy = True
                    log.warning("Redis is reachable again; caching and singleflight resume")
        return out

    def best_effort(self, fn: Callable[[], T], default: T) -> T:
        try:
            return self.call(fn)
        except RedisDown:
            return default


def _default_source_factory(alias: str, cluster: ClusterConfig, config: Config) -> ClusterSource:
    from bot.sources import source_for

    return source_for(alias, cluster, config)


class RunService:
    """`get(request)` -> Outcome, through the cache and singleflight; plus run records."""

    def __init__(
        self,
        config: Config,
        redis: Redis,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        run_timeout_s: float = 120.0,
        run_workers: int = 4,
        source_factory: SourceFactory | None = None,
        poll_s: float = 0.05,
    ) -> None:
        self.config = config
        self.store = Store(redis)
        self.metrics = metrics
        self.clock = clock
        self.run_timeout_s = run_timeout_s
        self.guard = RedisGuard(metrics)
        self._source_factory = source_factory or _default_source_factory
        self._poll = poll_s
        self._pool = ContextExecutor(max_workers=run_workers, thread_name_prefix="aksdiag-run")
        self._flights: Singleflight[tuple[str, bool], Outcome] = Singleflight()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()

    # public -------------------------------------------------------------------------------
    def cached(self, req: RunRequest) -> Outcome | None:
        """The cached answer, if there is one (no run starts)."""
        hit = self.guard.best_effort(lambda: self.store.get_report(req.key), None)
        if hit is None:
            return None
        self.metrics.cache_hits.labels(req.scenario).inc()
        self.metrics.runs.labels(req.scenario, "cached").inc()
        return self._from_cache(hit)

    def get(self, req: RunRequest, *, run_id: str, fresh: bool = False) -> Outcome:
        """A report for `req`: cached (unless `fresh`), shared with a run in flight, or run now."""
        slot = (req.key, fresh)
        shared, leader = self._flights.claim(slot)
        try:
            if leader:
                try:
                    outcome = self._lead(req, run_id, fresh)
                except BaseException as exc:
                    self._flights.fail(slot, exc)
                    raise
                self._flights.resolve(slot, outcome)
            else:
                self.metrics.singleflight_joins.labels(req.scenario).inc()
                try:
                    outcome = shared.result(timeout=self.run_timeout_s + LOCK_MARGIN_S)
                except FutureTimeout:
                    raise RunTimeout(run_id, self._timeout_reason()) from None
                outcome = replace(outcome, how="joined") if outcome.how == "fresh" else outcome
        except RunFailed as exc:
            kind = "timeout" if isinstance(exc, RunTimeout) else "failed"
            self.metrics.runs.labels(req.scenario, kind).inc()
            raise
        self.metrics.runs.labels(req.scenario, outcome.how).inc()
        return outcome

    def record(self, record: RunRecord) -> None:
        self.guard.best_effort(lambda: self.store.add_record(record), None)

    def history(self, cluster: str, limit: int = 10) -> list[RunRecord]:
        """Raises RedisDown when the records cannot be read."""
        return self.guard.call(lambda: self.store.history(cluster, limit))

    def first_time(self, kind: str, ident: str) -> bool:
        """False for a Slack delivery already handled (here or on another replica)."""
        key = f"{kind}:{ident}"
        try:
            return self.guard.call(lambda: self.store.first_seen(kind, ident))
        except RedisDown:
            with self._seen_lock:
                if key in self._seen:
                    return False
                self._seen[key] = None
                while len(self._seen) > 10_000:
                    self._seen.popitem(last=False)
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # singleflight across replicas -----------------------------------------------------------
    def _from_cache(self, hit: Cached) -> Outcome:
        return Outcome(hit.report, hit.run_id, "cached", max(0.0, self.clock() - hit.stored_at))

    def _cache_hit(self, req: RunRequest) -> Outcome | None:
        hit = self.guard.call(lambda: self.store.get_report(req.key))
        if hit is None:
            return None
        self.metrics.cache_hits.labels(req.scenario).inc()
        return self._from_cache(hit)

    def _lead(self, req: RunRequest, run_id: str, fresh: bool) -> Outcome:
        """This process's one caller for `req`: the cache, else the request's Redis lock (wait
        while another replica runs it), else run it. Without Redis: run it, uncached."""
        key = req.key
        lock_ttl = self.run_timeout_s + LOCK_MARGIN_S
        lock = self.store.run_lock(key, lock_ttl, self._poll)
        try:
            if not fresh and (hit := self._cache_hit(req)) is not None:
                return hit
            before = self.guard.call(lambda: self.store.get_result(key))
            if not self.guard.call(lambda: lock.acquire(token=run_id, blocking_timeout=lock_ttl)):
                raise RunTimeout(run_id, self._timeout_reason())
        except RedisDown:
            return Outcome(self._execute(req, run_id, fresh), run_id, "fresh")
        try:
            return self._locked(req, run_id, fresh, before.run_id if before else None)
        finally:
            self.guard.best_effort(lambda: self.store.release_run(key, run_id), None)

    def _locked(self, req: RunRequest, run_id: str, fresh: bool, seen: str | None) -> Outcome:
        """Holding the request's lock: the answer of a run that ended while we waited for the
        lock (a run id we had not seen), the cache, or a new run."""
        key = req.key
        result = self.guard.best_effort(lambda: self.store.get_result(key), None)
        if result is not None and result.run_id != seen:
            self.metrics.singleflight_joins.labels(req.scenario).inc()
            if result.report is None:
                raise RunFailed(result.run_id, result.error or "the shared run failed")
            return Outcome(result.report, result.run_id, "joined")
        if not fresh:  # someone may have finished between our cache read and the lock
            hit = self.guard.best_effort(lambda: self._cache_hit(req), None)
            if hit is not None:
                return hit
        try:
            report = self._execute(req, run_id, fresh)
        except RunFailed as exc:
            failed = RunResult(run_id, error=f"{exc.reason} (run {exc.run_id})")
            self.guard.best_effort(lambda: self.store.put_result(key, failed), None)
            raise
        self.guard.best_effort(lambda: self.store.put_result(key, RunResult(run_id, report)), None)
        ttl = self.config.cache_ttl_seconds
        if ttl > 0:
            stored = self.clock()
            self.guard.best_effort(
                lambda: self.store.put_report(key, report, run_id, stored, ttl), None
            )
        return Outcome(report, run_id, "fresh")

    # the run itself -------------------------------------------------------------------------
    def _timeout_reason(self) -> str:
        return f"the diagnosis did not finish within {self.run_timeout_s:g}s"

    def _execute(self, req: RunRequest, run_id: str, fresh: bool) -> Report:
        cluster = self.config.cluster(req.cluster)
        if cluster is None:
            raise RunFailed(run_id, f"cluster {req.cluster!r} is no longer configured")
        started = time.monotonic()
        self.metrics.in_flight.inc()
        future = self._pool.submit(self._run, req, cluster, fresh)
        future.add_done_callback(lambda _f: self.metrics.in_flight.dec())
        try:
            report = future.result(timeout=self.run_timeout_s)
        except FutureTimeout:
            log.error("run %s of %s on %s timed out", run_id, req.scenario, req.cluster)
            raise RunTimeout(run_id, self._timeout_reason()) from None
        except RunFailed:
            raise
        except Exception as exc:
            log.exception("run %s of %s on %s failed", run_id, req.scenario, req.cluster)
            raise RunFailed(run_id, _reason(exc)) from exc
        self.metrics.duration.labels(req.scenario).observe(time.monotonic() - started)
        return report

    def _run(self, req: RunRequest, cluster: ClusterConfig, fresh: bool) -> Report:
        source = self._source_factory(req.cluster, cluster, self.config)
        self.metrics.collections.labels(req.cluster).inc()
        networks = tuple(cluster.operator_networks)
        return run(req.scenario, source, req.args, operator_networks=networks, fresh=fresh)


def _reason(exc: Exception) -> str:
    """What to tell a user about an exception: source errors verbatim, the rest by type."""
    from bot.sources import SourceError

    if isinstance(exc, SnapshotError | SourceError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); the logs have the details"


def outcome_record(
    outcome: Outcome | None,
    req: RunRequest,
    *,
    run_id: str,
    user: str,
    channel: str,
    at: float,
    error: RunFailed | None = None,
) -> RunRecord:
    """The history entry for one answered request."""
    base: dict[str, Any] = {
        "run_id": run_id,
        "cluster": req.cluster,
        "scenario": req.scenario,
        "arguments": req.args.to_dict(),
        "user": user,
        "channel": channel,
        "at": at,
    }
    if outcome is None:
        kind = "timeout" if isinstance(error, RunTimeout) else "failed"
        return RunRecord(**base, outcome=kind, error=error.reason if error else None)
    report = outcome.report
    total = report.timings_ms.get("total")
    return RunRecord(
        **{**base, "run_id": outcome.run_id},
        outcome=outcome.how,
        verdict=report.worst.value,
        counts={k: v for k, v in report.counts().items() if v},
        duration_s=round(total / 1000, 2) if total is not None else None,
    )
