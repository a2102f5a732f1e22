"""One fire time of a digest, done once across replicas: the Redis side of it.

A slot is a digest name plus its scheduled time as the digest's time zone writes it. A replica
claims it with `SET NX EX` and a short lease, renewed by a `Lease` thread while it works; the
claim is released only by the token that holds it (compare-and-delete in Lua), and a replica
that dies simply stops renewing, so its claim runs out and a waiting replica can take over.
The `done` marker ends the slot for everyone.

Keys, under `aksdiag:digest:<name>:<slot>:` — `claim` (token, lease TTL), `run` (hash: the
rendered plan and progress, see bot.digest), `attempts`, `done` (what happened).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

log = logging.getLogger(__name__)

KEY = "aksdiag:digest"
SLOT_TTL_S = 7 * 86400

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


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

    def __init__(self, r: redis.Redis, key: str, token: str, lease_s: int) -> None:
        self._redis, self._key, self._token, self._lease_s = r, key, token, lease_s
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="digest-lease", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                mine = self._redis.eval(_RENEW, 1, self._key, self._token, self._lease_s)
            except redis.RedisError:
                log.warning("could not renew the digest claim %s; retrying", self._key)
                continue
            if not mine:
                self._lost.set()
                return

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(self._key)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        release(self._redis, self._key, self._token)


def release(r: redis.Redis, key: str, token: str) -> None:
    try:
        r.eval(_RELEASE, 1, key, token)
    except redis.RedisError:
        log.warning("could not release the digest claim %s; it expires by itself", key)


def claim(
    r: redis.Redis, keys: SlotKeys, lease_s: int, poll_s: float, max_wait_s: float
) -> str | None:
    """A token once this replica holds the slot. While another replica holds it, wait: it
    finishes (done: None) or its lease runs out (claim it). None as well after `max_wait_s`."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + max_wait_s
    while True:
        if r.exists(keys.done):
            return None
        if r.set(keys.claim, token, nx=True, ex=lease_s):
            if r.exists(keys.done):  # finished between our two looks
                release(r, keys.claim, token)
                return None
            return token
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
