"""The run service's one path (docs/caching.md) with two replicas on one real valkey: a run
that fails on one replica fails the requests waiting on it on another, without a second run;
Re-run skips the cached report and asks the source for fresh reads; a Re-run that arrives
while the same request is being run joins that run (the answer to "why did Re-run not
re-read?")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from bot_harness import make_clusters

from bot.config import ClusterConfig, Config, load_config
from bot.metrics import Metrics
from bot.runs import RunFailed, RunRequest, RunService
from diagnostics.collectors.snapshot_dir import SnapshotError, SnapshotSource

REQ = RunRequest("apiserver", "prod")


class GatedFolder:
    """The cluster's snapshot folder, read only once the test opens the gate; every read is
    recorded with its `fresh` flag."""

    def __init__(self, folder: Path, gate: threading.Event, reads: list[bool], fail: bool):
        self.label = "prod"
        self._inner = SnapshotSource(folder, label="prod")
        self._gate, self._reads, self._fail = gate, reads, fail

    def collect(self, sources: set[str], args: Any, *, fresh: bool = False) -> Any:
        self._reads.append(fresh)
        assert self._gate.wait(10)
        if self._fail:
            raise SnapshotError("FAKE: the snapshot folder went away")
        return self._inner.collect(sources, args, fresh=fresh)


class Replicas:
    def __init__(self, tmp: Path, redis_url: str, fail: bool = False) -> None:
        (tmp / "aksdiag.yaml").write_text(yaml.safe_dump(make_clusters(tmp)))
        self.config = load_config(tmp / "aksdiag.yaml")
        self.gate = threading.Event()
        self.reads: list[bool] = []
        self.redis = redis.Redis.from_url(redis_url)

        def source(alias: str, cluster: ClusterConfig, config: Config) -> GatedFolder:
            return GatedFolder(tmp / "prod", self.gate, self.reads, fail)

        self.a, self.b = (
            RunService(
                self.config, redis.Redis.from_url(redis_url), Metrics(), source_factory=source
            )
            for _ in range(2)
        )

    def lock_attempts(self) -> int:
        """SET commands valkey has served: a replica waiting on a run lock tries it again and
        again (`SET NX`), so a rising count says it is waiting."""
        stats = self.redis.info("commandstats")
        return int(stats.get("cmdstat_set", {}).get("calls", 0))

    def close(self) -> None:
        self.a.close()
        self.b.close()


def wait_for(check: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def replicas(tmp_path, redis_url):
    made: list[Replicas] = []

    def make(fail: bool = False) -> Replicas:
        made.append(Replicas(tmp_path, redis_url, fail))
        return made[-1]

    yield make
    for r in made:
        r.gate.set()
        r.close()


def _b_waits_on_a(r: Replicas, pool: ThreadPoolExecutor, b_fresh: bool) -> tuple[Any, Any]:
    a = pool.submit(r.a.get, REQ, run_id="run-a")
    wait_for(lambda: r.reads)  # replica A is reading the cluster
    before = r.lock_attempts()
    b = pool.submit(r.b.get, REQ, run_id="run-b", fresh=b_fresh)
    wait_for(lambda: r.lock_attempts() >= before + 2)  # B waits on the request's lock
    r.gate.set()
    return a, b


def test_a_failed_run_fails_the_requests_waiting_on_it_on_another_replica(replicas):
    r = replicas(fail=True)
    with ThreadPoolExecutor(2) as pool:
        a, b = _b_waits_on_a(r, pool, b_fresh=False)
        with pytest.raises(RunFailed) as failed_a:
            a.result(10)
        with pytest.raises(RunFailed) as failed_b:
            b.result(10)
    assert failed_a.value.run_id == failed_b.value.run_id == "run-a"
    assert "the snapshot folder went away" in failed_b.value.reason
    assert r.reads == [False]  # one read, not one per waiter
    assert r.a.cached(REQ) is None  # a failure is never a cached answer


def test_rerun_skips_the_cached_report_and_asks_the_source_for_fresh_reads(replicas):
    r = replicas()
    r.gate.set()
    first = r.a.get(REQ, run_id="run-1")
    again = r.b.get(REQ, run_id="run-2")
    rerun = r.b.get(REQ, run_id="run-3", fresh=True)
    assert (first.how, again.how, rerun.how) == ("fresh", "cached", "fresh")
    assert again.run_id == "run-1" and rerun.run_id == "run-3"
    assert r.reads == [False, True]
    cached = r.a.cached(REQ)
    assert cached is not None and cached.run_id == "run-3"  # the Re-run's report is cached now


def test_a_rerun_while_the_same_request_runs_elsewhere_joins_that_run(replicas):
    r = replicas()
    with ThreadPoolExecutor(2) as pool:
        a, b = _b_waits_on_a(r, pool, b_fresh=True)
        led, joined = a.result(10), b.result(10)
    assert (led.how, joined.how) == ("fresh", "joined")
    assert led.run_id == joined.run_id == "run-a" and r.reads == [False]
