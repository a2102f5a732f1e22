"""Per-user and per-channel limits on diagnoses and digests posted on demand: how many may be in flight at once, and how
many may start per minute (each one posts a thread, so this bounds posts per minute). Shared
by every replica through Redis; during a Redis outage each replica keeps the same counts in
its own memory, so a flood is still bounded.

`Limits.admit(user, channel)` answers None and takes a slot, or the ephemeral message that
says which limit was hit and when to try again; `release(ticket)` frees the slot when the
answer is done. Slots of a process that died expire after `hold_s`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from redis import Redis

from bot.runs import RedisDown, RedisGuard
from diagnostics.collectors.settings import load_settings

PREFIX = "aksdiag:limit:"


@dataclass(frozen=True)
class LimitSettings:
    """Defaults fit an incident: one person may ask a few scenarios at once, a channel a few
    people; a flood of identical commands gets a handful of threads, not hundreds."""

    user_in_flight: int = 4
    channel_in_flight: int = 8
    user_per_minute: int = 10
    channel_per_minute: int = 30
    hold_s: float = 300.0  # an in-flight slot of a dead process frees itself after this

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LimitSettings:
        """The `AKSDIAG_LIMIT_*` variables (docs/configuration.md), one loader for all."""
        return cls(**load_settings(cls, LIMITS_ENV, env))


LIMITS_ENV = {
    "user_in_flight": "AKSDIAG_LIMIT_USER_IN_FLIGHT",
    "channel_in_flight": "AKSDIAG_LIMIT_CHANNEL_IN_FLIGHT",
    "user_per_minute": "AKSDIAG_LIMIT_USER_PER_MINUTE",
    "channel_per_minute": "AKSDIAG_LIMIT_CHANNEL_PER_MINUTE",
    "hold_s": "AKSDIAG_LIMIT_HOLD_SECONDS",
}


@dataclass(frozen=True)
class Ticket:
    token: str
    keys: tuple[str, ...] = field(default_factory=tuple)


class _Memory:
    """The same sorted-set counts in this process, for when Redis is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, dict[str, float]] = {}

    def take(self, key: str, token: str, now: float, window: float, limit: int) -> bool:
        with self._lock:
            members = self._sets.setdefault(key, {})
            for old in [t for t, at in members.items() if at <= now - window]:
                del members[old]
            if len(members) >= limit:
                return False
            members[token] = now
            return True

    def drop(self, key: str, token: str) -> None:
        with self._lock:
            self._sets.get(key, {}).pop(token, None)


class Limits:
    def __init__(
        self,
        redis: Redis,
        guard: RedisGuard,
        settings: LimitSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._guard = guard
        self.settings = settings or LimitSettings()
        self._clock = clock
        self._memory = _Memory()

    def _take(self, key: str, token: str, window: float, limit: int) -> bool:
        """Add `token` to the window at `key` unless it already holds `limit` members."""
        now = self._clock()

        def redis_take() -> bool:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zadd(key, {token: now})
            pipe.zcard(key)
            pipe.expire(key, int(window) + 60)
            count = pipe.execute()[2]
            if int(count) > limit:
                self._redis.zrem(key, token)
                return False
            return True

        try:
            return self._guard.call(redis_take)
        except RedisDown:
            return self._memory.take(key, token, now, window, limit)

    def _drop(self, key: str, token: str) -> None:
        self._memory.drop(key, token)
        self._guard.best_effort(lambda: self._redis.zrem(key, token), 0)

    def admit(self, user: str, channel: str) -> Ticket | str:
        """A ticket holding one in-flight slot (and one start this minute) for `user` in
        `channel`, or the message saying which limit was reached."""
        s = self.settings
        token = uuid.uuid4().hex
        checks: list[tuple[str, float, int, str]] = [
            (
                f"{PREFIX}flight:user:{user}",
                s.hold_s,
                s.user_in_flight,
                f"you have {s.user_in_flight} diagnoses or digests running already; this one starts when "
                "one of them has answered. Ask again then.",
            ),
            (
                f"{PREFIX}flight:channel:{channel}",
                s.hold_s,
                s.channel_in_flight,
                f"{s.channel_in_flight} diagnoses or digests are running in this channel already; ask again "
                "when one has answered.",
            ),
            (
                f"{PREFIX}rate:user:{user}",
                60.0,
                s.user_per_minute,
                f"you asked for {s.user_per_minute} diagnoses or digests in the last minute, the most one "
                "person may; ask again in a minute.",
            ),
            (
                f"{PREFIX}rate:channel:{channel}",
                60.0,
                s.channel_per_minute,
                f"this channel had {s.channel_per_minute} diagnoses or digests in the last minute, the most "
                "one channel may; ask again in a minute.",
            ),
        ]
        taken: list[str] = []
        for key, window, limit, why in checks:
            if not self._take(key, token, window, limit):
                for done in taken:  # nothing is held for a refused request
                    self._drop(done, token)
                return f":hourglass: Not now: {why}"
            taken.append(key)
        # the per-minute entries stay (they count starts); only in-flight slots are released
        return Ticket(token, tuple(k for k in taken if f"{PREFIX}flight:" in k))

    def release(self, ticket: Ticket) -> None:
        for key in ticket.keys:
            self._drop(key, ticket.token)
