"""The one in-process singleflight, and one cluster's read cache and circuit breaker.

`Singleflight`: calls in flight by key; the first caller of a key leads, later callers get its
Future. bot.runs keys it by request (a Redis lock extends it across replicas), `CollectionCache`
by read. See docs/caching.md.

`CollectionCache`: each read of a live cluster (a list, the ManagedCluster, the probe...) has a
key. A caller `claim`s the keys it needs: keys read within the TTL, or being read right now by
another caller, come back as futures to share; the rest are the caller's to fetch and `resolve`.
So concurrent scenarios and requesters on one cluster cause one read of each list, and a
scenario that needs a list another one read a minute ago reads nothing. The last good value of
every key is kept, so an open circuit (repeated 429/5xx) can answer from it and say how old it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Singleflight(Generic[K, V]):
    """Calls in flight, by key: `claim` makes the first caller of a key its leader, who must
    `resolve` (or `fail`) it; everyone gets the same Future."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[K, Future[V]] = {}

    def claim(self, key: K) -> tuple[Future[V], bool]:
        """The key's Future, and whether the caller leads (and must `resolve` it)."""
        with self._lock:
            fut = self._flights.get(key)
            if fut is not None:
                return fut, False
            fut = self._flights[key] = Future()
            fut.set_running_or_notify_cancel()
            return fut, True

    def resolve(self, key: K, value: V) -> None:
        """End the flight: its waiters get `value`."""
        if (fut := self._end(key)) is not None:
            fut.set_result(value)

    def fail(self, key: K, error: BaseException) -> None:
        """End the flight: its waiters get `error` raised."""
        if (fut := self._end(key)) is not None:
            fut.set_exception(error)

    def _end(self, key: K) -> Future[V] | None:
        with self._lock:
            return self._flights.pop(key, None)


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
        self._flights: Singleflight[str, Entry] = Singleflight()

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
                else:
                    futures[key], leader = self._flights.claim(key)
                    if leader:
                        mine.append(key)
        return futures, mine

    def resolve(self, key: str, value: Any = None, error: BaseException | None = None) -> None:
        if error is not None:
            self._flights.fail(key, error)
            return
        entry = Entry(value, time.time(), self._clock())
        with self._lock:
            self._entries[key] = entry
        self._flights.resolve(key, entry)

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
