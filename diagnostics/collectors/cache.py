"""One cluster's collection cache, singleflight and circuit breaker.

Each read (a list, the ManagedCluster, the probe...) has a key. A caller `claim`s the keys it
needs: keys read within the TTL, or being read right now by another caller, come back as
futures to share; the rest are the caller's to fetch and `resolve`. So concurrent scenarios
and requesters on one cluster cause one read of each list, and a scenario that needs a list
another one read a minute ago reads nothing. The last good value of every key is kept, so an
open circuit (repeated 429/5xx) can answer from it and say how old it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    value: Any
    at: float  # wall clock, when the read finished
    mono: float  # monotonic twin of `at`, for ages

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.mono


class CollectionCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._inflight: dict[str, Future[Entry]] = {}

    def claim(
        self, keys: list[str], ttl: float | None = None
    ) -> tuple[dict[str, Future[Entry]], list[str]]:
        """Futures for every key; the second item lists the keys the caller must fetch and
        then `resolve` (their futures are registered as in flight)."""
        limit = self.ttl if ttl is None else ttl
        now = self._clock()
        futures: dict[str, Future[Entry]] = {}
        mine: list[str] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and now - entry.mono < limit:
                    done: Future[Entry] = Future()
                    done.set_result(entry)
                    futures[key] = done
                elif key in self._inflight:
                    futures[key] = self._inflight[key]
                else:
                    fut: Future[Entry] = Future()
                    fut.set_running_or_notify_cancel()
                    self._inflight[key] = futures[key] = fut
                    mine.append(key)
        return futures, mine

    def resolve(self, key: str, value: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            fut = self._inflight.pop(key, None)
            if error is None:
                entry = Entry(value, time.time(), self._clock())
                self._entries[key] = entry
        if fut is None:
            return
        if error is None:
            fut.set_result(entry)
        else:
            fut.set_exception(error)

    def last(self, key: str) -> Entry | None:
        """The last good value of a key, however old."""
        with self._lock:
            return self._entries.get(key)

    def fresh(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.mono < self.ttl:
            return entry
        return None


class CircuitBreaker:
    """Opens after `threshold` consecutive overload failures (429/5xx after retries); while
    open, callers answer from the cache instead of calling. After `cooldown` one collection
    may try again (half-open): success closes it, another failure re-opens it."""

    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.cooldown = max(1, threshold), cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened: float | None = None

    def allow(self) -> bool:
        with self._lock:
            return self._opened is None or self._clock() - self._opened >= self.cooldown

    def remaining(self) -> float:
        with self._lock:
            if self._opened is None:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened))

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened = None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened = self._clock()

    @property
    def open(self) -> bool:
        return not self.allow()
