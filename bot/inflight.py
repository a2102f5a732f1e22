"""Answers in flight, so that none is lost when a replica dies while answering (SIGKILL, an
OOM kill, a node drained without grace): its requester is told, with the run id and a Re-run
button, by whichever replica notices first.

Each diagnosis being answered has a record in Redis naming its owner (the process answering)
and where the answer goes (channel, parent message, thread, response_url). Each process holds
a lease, a redis-py `Lock` that a heartbeat `reacquire`s. A sweeper on every replica, at
startup and then every few seconds, looks at the records whose owner's lease is gone; once the
lease has stayed gone for a third of a lease (so a Redis blip does not declare a live replica
dead), `SREM` on the set hands each record to exactly one replica, which releases the dead
run's singleflight lock (identical requests would wait on it for minutes) and calls
`on_orphan`: it tells the requester and records the run as failed. docs/caching.md has the
other leases.

Redis keys:
- `aksdiag:inflight`               the run ids being answered (a set)
- `aksdiag:inflight:<run id>`      that run's record (JSON), TTL one day (a backstop)
- `aksdiag:replica:<owner>`        a process's lease (`Lock`), TTL `lease_s`, renewed every third

Best effort, like every use of Redis here: with Redis down nothing is recorded and answers go
on as usual.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock

from bot.runs import RedisDown, RedisGuard
from bot.store import Store, request_key

log = logging.getLogger(__name__)
SET = "aksdiag:inflight"
RECORD_TTL_S = 86400
MAX_ATTEMPTS = 5


def _record_key(run_id: str) -> str:
    return f"{SET}:{run_id}"


def _lease_key(owner: str) -> str:
    return f"aksdiag:replica:{owner}"


@dataclass(slots=True)
class InFlightRun:
    """One answer being worked on, and where it goes."""

    run_id: str
    owner: str
    scenario: str
    cluster: str
    channel: str
    user: str
    arguments: dict[str, Any] = field(default_factory=dict)
    thread_ts: str | None = None  # where the answer's replies go
    parent_ts: str | None = None  # the "running" message, once posted
    response_url: str | None = None
    started_at: float = 0.0
    attempts: int = 0  # how many sweeps failed to tell the requester

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> InFlightRun:
        data = orjson.loads(raw)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class InFlight:
    """`begin` / `update` / `end` around an answer; `start` the heartbeat and sweeper."""

    def __init__(
        self,
        redis: Redis,
        guard: RedisGuard,
        *,
        lease_s: float = 15.0,
        sweep_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,  # how long a lease has been gone
    ) -> None:
        self.redis = redis
        self.guard = guard
        self.owner = uuid.uuid4().hex[:12]
        self.lease_s = lease_s
        self.sweep_s = sweep_s
        self.clock = clock
        self.on_orphan: Callable[[InFlightRun], None] | None = None
        self._lease = Lock(redis, _lease_key(self.owner), timeout=lease_s, thread_local=False)
        self._suspects: dict[str, float] = {}  # owner -> when its lease was first seen gone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # around one answer ----------------------------------------------------------------------
    def begin(self, run: InFlightRun) -> None:
        run.owner = self.owner

        def write() -> None:
            self._renew()
            pipe = self.redis.pipeline()
            pipe.set(_record_key(run.run_id), run.to_json(), ex=RECORD_TTL_S)
            pipe.sadd(SET, run.run_id)
            pipe.execute()

        self.guard.best_effort(write, None)

    def update(self, run: InFlightRun) -> None:
        self.guard.best_effort(
            lambda: self.redis.set(_record_key(run.run_id), run.to_json(), ex=RECORD_TTL_S), None
        )

    def end(self, run_id: str) -> None:
        def delete() -> None:
            pipe = self.redis.pipeline()
            pipe.srem(SET, run_id)
            pipe.delete(_record_key(run_id))
            pipe.execute()

        self.guard.best_effort(delete, None)

    # heartbeat and sweeper ------------------------------------------------------------------
    def _renew(self) -> None:
        """Keep this process's lease: `reacquire` it, or take it again when it is not ours
        (never taken yet, or lost with a Redis restart)."""
        try:
            self._lease.reacquire()
        except LockError:
            self._lease.acquire(blocking=False)

    def start(self) -> InFlight:
        self._thread = threading.Thread(target=self._loop, name="aksdiag-inflight", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing; a clean stop gives the lease back (answers in flight have ended)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

        def give_back() -> None:
            with suppress(LockError):  # not held: nothing to give back
                self._lease.release()

        self.guard.best_effort(give_back, None)

    def _loop(self) -> None:
        beat = self.lease_s / 3
        next_beat = next_sweep = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self.guard.best_effort(self._renew, None)
                next_beat = now + beat
            if now >= next_sweep:
                try:
                    self.sweep()
                except Exception:
                    log.exception("the sweep for interrupted answers failed")
                next_sweep = now + self.sweep_s
            self._stop.wait(max(0.05, min(next_beat, next_sweep) - time.monotonic()))

    def sweep(self) -> int:
        """Hand the answers of dead replicas to `on_orphan`; how many were handed over."""
        handed = 0
        try:
            for raw_id in self.guard.call(lambda: self.redis.smembers(SET)):
                handed += self._consider(raw_id)
        except RedisDown:
            pass  # the next sweep tries again
        return handed

    def _consider(self, raw_id: bytes | str) -> int:
        run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        raw = self.guard.call(lambda: self.redis.get(_record_key(run_id)))
        if raw is None:  # ended between the two reads, or expired
            self.guard.call(lambda: self.redis.srem(SET, run_id))
            return 0
        run = InFlightRun.from_json(raw)
        if run.owner == self.owner:
            return 0
        if self.guard.call(lambda: self.redis.exists(_lease_key(run.owner))):
            self._suspects.pop(run.owner, None)
            return 0
        first_seen = self._suspects.setdefault(run.owner, self.clock())
        if self.clock() - first_seen < self.lease_s / 3:
            return 0  # give a live replica one heartbeat to renew its lease after a Redis blip
        if self.guard.call(lambda: self.redis.srem(SET, run_id)) != 1:
            return 0  # another replica took it
        self._hand_over(run)
        return 1

    def _hand_over(self, run: InFlightRun) -> None:
        # The dead run may hold the singleflight lock of its request: identical requests would
        # wait on it until it expires (minutes). Release it (only if that run still holds it).
        key = request_key(run.cluster, run.scenario, run.arguments)
        self.guard.best_effort(lambda: Store(self.redis).release_run(key, run.run_id), None)
        log.warning(
            "run %s of %s on %s was interrupted: its replica %s is gone",
            run.run_id,
            run.scenario,
            run.cluster,
            run.owner,
            extra={"fields": {"run_id": run.run_id, "user": run.user, "channel": run.channel}},
        )
        try:
            if self.on_orphan is not None:
                self.on_orphan(run)
        except Exception:
            run.attempts += 1
            if run.attempts >= MAX_ATTEMPTS:
                log.exception(
                    "gave up telling %s that run %s was interrupted", run.user, run.run_id
                )
            else:
                log.warning(
                    "could not tell %s yet that run %s was interrupted; will retry",
                    run.user,
                    run.run_id,
                    exc_info=True,
                )
                self.update(run)
                self.guard.best_effort(lambda: self.redis.sadd(SET, run.run_id), None)
                return
        self.guard.best_effort(lambda: self.redis.delete(_record_key(run.run_id)), None)
