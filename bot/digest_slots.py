"""One fire time of a digest, done once across replicas: the Redis side of it.

A slot is a digest name plus its scheduled time as the digest's time zone writes it. A replica
claims it with a redis-py `Lock` with a short timeout, which a `Lease` thread `reacquire`s
while it works; only the holder's token releases it, and a replica that dies simply stops
renewing, so its claim runs out and a waiting replica can take over (docs/caching.md).
The `done` marker ends the slot for everyone.

Keys, under `aksdiag:digest:<name>:<slot>:` — `claim` (token, lease TTL), `run` (hash: the
rendered plan and progress, see bot.digest), `attempts`, `done` (what happened).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
from redis.exceptions import LockError
from redis.lock import Lock

log = logging.getLogger(__name__)

KEY = "aksdiag:digest"
SLOT_TTL_S = 7 * 86400


def slot_of(scheduled_for: datetime, tz: str) -> str:
    """The fire time as the digest's time zone writes it (`2026-11-20T08:00+00:00`): the same
    slot on every replica, whatever their clocks and whenever they run it."""
    if scheduled_for.tzinfo is None:
        scheduled_for = scheduled_for.replace(tzinfo=ZoneInfo(tz))
    return scheduled_for.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes")


@dataclass(frozen=True, slots=True)
class SlotKeys:
    name: str
    slot: str
    claim: str
    run: str
    attempts: str
    done: str

    @classmethod
    def of(cls, name: str, slot: str) -> SlotKeys:
        base = f"{KEY}:{name}:{slot}"
        return cls(name, slot, f"{base}:claim", f"{base}:run", f"{base}:attempts", f"{base}:done")


class LeaseLost(Exception):
    """Another replica holds the slot now: stop without posting anything more."""


class Lease:
    """Renews a claim while the work goes on; `check()` raises once the claim is no longer
    ours. Leaving the `with` block releases the claim (if it is still ours)."""

    def __init__(self, claimed: Lock) -> None:
        self._lock = claimed
        self._every = float(claimed.timeout or 1) / 3
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="digest-lease", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._lock.reacquire()
            except LockError:  # another replica holds it now
                self._lost.set()
                return
            except redis.RedisError:
                log.warning("could not renew the digest claim %s; retrying", self._lock.name)

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(self._lock.name)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        release(self._lock)


def release(claimed: Lock) -> None:
    try:
        claimed.release()
    except LockError:
        pass  # no longer ours: nothing to give back
    except redis.RedisError:
        log.warning("could not release the digest claim %s; it expires by itself", claimed.name)


def claim(
    r: redis.Redis, keys: SlotKeys, lease_s: int, poll_s: float, max_wait_s: float
) -> Lock | None:
    """The held claim once this replica has the slot. While another replica holds it, wait: it
    finishes (done: None) or its lease runs out (claim it). None as well after `max_wait_s`."""
    lock = Lock(r, keys.claim, timeout=lease_s, thread_local=False)
    deadline = time.monotonic() + max_wait_s
    while True:
        if r.exists(keys.done):
            return None
        if lock.acquire(blocking=False):
            if r.exists(keys.done):  # finished between our two looks
                release(lock)
                return None
            return lock
        if time.monotonic() >= deadline:
            log.error(
                "digest %s %s: still held by another replica; stopped waiting", keys.name, keys.slot
            )
            return None
        time.sleep(poll_s)


def finish(r: redis.Redis, keys: SlotKeys, outcome: str) -> None:
    """Mark the slot done for every replica (`posted <ts>`, `quiet`, `failed: ...`)."""
    r.set(keys.done, outcome, ex=SLOT_TTL_S)
    r.delete(keys.run)


def attempt(r: redis.Redis, keys: SlotKeys) -> int:
    """Count one more attempt at the slot (shared by every replica)."""
    n = int(r.incr(keys.attempts))
    r.expire(keys.attempts, SLOT_TTL_S)
    return n
