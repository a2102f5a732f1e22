"""The sweeper for answers a dead replica left behind (bot.inflight), against real valkey and
driven by an injected clock instead of sleeps: a live replica's answer is never taken, however
long the sweeps go on; a dead one's is handed to exactly one replica, which releases the dead
run's singleflight lock; a lease that vanished for a moment (a Redis blip) is taken back."""

from __future__ import annotations

import redis

from bot.inflight import SET, InFlight, InFlightRun
from bot.metrics import Metrics
from bot.runs import RedisGuard
from bot.store import Store, request_key

LEASE_S = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def replicas(redis_url: str, clock: Clock, n: int) -> list[InFlight]:
    r = redis.Redis.from_url(redis_url)
    guard = RedisGuard(Metrics())
    return [InFlight(r, guard, lease_s=LEASE_S, sweep_s=1.0, clock=clock) for _ in range(n)]


def answer(run_id: str) -> InFlightRun:
    return InFlightRun(
        run_id=run_id,
        owner="",
        scenario="health",
        cluster="prod",
        channel="C0FAKEOPS",
        user="UFAKEALICE",
        thread_ts="1690000000.000100",
    )


def test_a_live_replicas_answer_is_left_alone_and_a_dead_ones_goes_to_exactly_one(redis_url):
    clock = Clock()
    a, b, c = replicas(redis_url, clock, 3)
    told: dict[str, list[InFlightRun]] = {"b": [], "c": []}
    b.on_orphan, c.on_orphan = told["b"].append, told["c"].append
    r = redis.Redis.from_url(redis_url)
    lock = Store(r).run_lock(request_key("prod", "health", {}), 60, 0.05)
    assert lock.acquire(token="run-a1", blocking=False)  # A leads the request's run
    a.begin(answer("run-a1"))

    for _ in range(4):  # far past a lease by the sweepers' clock: A's lease is still in Redis
        clock.advance(LEASE_S)
        assert b.sweep() == c.sweep() == 0
    assert told == {"b": [], "c": []}

    r.delete(f"aksdiag:replica:{a.owner}")  # A died: its lease ran out
    assert b.sweep() == c.sweep() == 0  # gone once may be a Redis blip
    clock.advance(LEASE_S / 3)
    assert b.sweep() + c.sweep() == 1
    (orphan,) = told["b"] + told["c"]
    assert orphan.run_id == "run-a1" and orphan.owner == a.owner
    assert orphan.thread_ts == "1690000000.000100"
    assert r.smembers(SET) == set() and not lock.locked()  # waiters on the request go on now
    clock.advance(LEASE_S)
    assert b.sweep() == c.sweep() == 0  # handed over once


def test_a_lease_lost_for_a_moment_is_taken_back_before_anyone_gives_up_on_it(redis_url):
    clock = Clock()
    a, b = replicas(redis_url, clock, 2)
    told: list[InFlightRun] = []
    b.on_orphan = told.append
    r = redis.Redis.from_url(redis_url)
    a.begin(answer("run-a1"))
    r.delete(f"aksdiag:replica:{a.owner}")  # Redis restarted without its data...
    assert b.sweep() == 0
    a.begin(answer("run-a2"))  # ...and A's next write takes its lease back
    assert 0 < r.pttl(f"aksdiag:replica:{a.owner}") <= LEASE_S * 1000
    clock.advance(LEASE_S)
    assert b.sweep() == 0 and told == []
    a.end("run-a1")
    a.end("run-a2")
    a.stop()  # a clean stop gives the lease back
    assert not r.exists(f"aksdiag:replica:{a.owner}") and r.smembers(SET) == set()


def test_telling_the_requester_is_retried_on_the_next_sweep_when_slack_fails(redis_url):
    clock = Clock()
    a, b = replicas(redis_url, clock, 2)
    attempts: list[str] = []

    def flaky(run: InFlightRun) -> None:
        attempts.append(run.run_id)
        if len(attempts) == 1:
            raise ConnectionError("FAKE: Slack unreachable")

    b.on_orphan = flaky
    r = redis.Redis.from_url(redis_url)
    a.begin(answer("run-a1"))
    r.delete(f"aksdiag:replica:{a.owner}")
    b.sweep()
    clock.advance(LEASE_S / 3)
    assert b.sweep() == 1 and attempts == ["run-a1"]  # failed: back in the set
    assert b.sweep() == 1 and attempts == ["run-a1", "run-a1"]  # told
    assert b.sweep() == 0 and r.smembers(SET) == set()
