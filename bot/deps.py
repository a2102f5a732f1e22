"""What the handlers need, built once by `aksdiag serve` (or a test) and handed to
`create_app`: configuration, Redis, the Slack client and sender, the bot's own executor, the
run service, user-group cache, metrics and a clock. Nothing here starts at import time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import Redis
from slack_sdk import WebClient

from bot.config import Config
from bot.executors import ContextExecutor
from bot.inflight import InFlight
from bot.limits import Limits, LimitSettings
from bot.metrics import Metrics
from bot.runs import RunService, SourceFactory
from bot.slack_send import Sender
from bot.usergroups import UsergroupCache
from diagnostics.runner import ClusterSource

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Sizes and timeouts, from the environment (`AKSDIAG_*`), with defaults that fit one pod."""

    # The bot's own executor: Slack posting and waiting on runs. Small on purpose: more
    # threads only compete for the interpreter with the ack path (make bench, row 1).
    workers: int = 8
    run_workers: int = 4  # concurrent cluster reads and analyses
    listener_threads: int = 8  # Bolt's listeners only parse, authorize, ack and hand off
    run_timeout_s: float = 120.0
    command: str = "/aksdiag"
    lease_s: float = 15.0  # a replica silent this long is dead: its answers in flight are reaped
    sweep_s: float = 5.0  # how often each replica looks for them (bot.inflight)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            workers=int(e.get("AKSDIAG_WORKERS", cls.workers)),
            run_workers=int(e.get("AKSDIAG_RUN_WORKERS", cls.run_workers)),
            listener_threads=int(e.get("AKSDIAG_LISTENER_THREADS", cls.listener_threads)),
            run_timeout_s=float(e.get("AKSDIAG_RUN_TIMEOUT_SECONDS", cls.run_timeout_s)),
            command=e.get("AKSDIAG_COMMAND", cls.command),
            lease_s=float(e.get("AKSDIAG_LEASE_SECONDS", cls.lease_s)),
            sweep_s=float(e.get("AKSDIAG_SWEEP_SECONDS", cls.sweep_s)),
        )


@dataclass
class Deps:
    config: Config
    redis: Redis
    client: WebClient
    executor: ContextExecutor
    runs: RunService
    metrics: Metrics
    sender: Sender
    usergroups: UsergroupCache
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = time.time
    inflight: InFlight | None = None  # answers in flight, reaped when a replica dies
    silences: Any = None  # bot.silences.SilenceStore, when that module is present
    digests: Any = None  # bot.digest.DigestService, when that module is present
    limits: Limits | None = None  # per-user and per-channel diagnoses in flight and per minute

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Hand work to the bot's executor, with the caller's request id."""
        return self.executor.submit(fn, *args, **kwargs)

    def close(self) -> None:
        self.usergroups.stop()
        if self.inflight is not None:
            self.inflight.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.runs.close()


def build_deps(
    config: Config,
    redis: Redis,
    client: WebClient,
    *,
    settings: Settings | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    source_factory: SourceFactory | None = None,
) -> Deps:
    """Wire the parts together; optional modules (silences, digests) join when present."""
    settings = settings or Settings()
    metrics = metrics or Metrics()
    runs = RunService(
        config, redis, metrics, clock=clock, run_timeout_s=settings.run_timeout_s,
        run_workers=settings.run_workers, source_factory=source_factory,
    )  # fmt: skip
    deps = Deps(
        config=config, redis=redis, client=client,
        executor=ContextExecutor(max_workers=settings.workers, thread_name_prefix="aksdiag-work"),
        runs=runs, metrics=metrics, sender=Sender(client, metrics),
        usergroups=UsergroupCache(client, config), settings=settings, clock=clock,
    )  # fmt: skip
    deps.inflight = InFlight(
        redis, runs.guard, lease_s=settings.lease_s, sweep_s=settings.sweep_s, clock=clock
    )
    deps.limits = Limits(redis, runs.guard, LimitSettings.from_env(), clock=clock)
    deps.silences = _optional_silences(redis)
    deps.digests = _optional_digests(deps, source_factory)
    return deps


def _optional_silences(redis: Redis) -> Any:
    try:
        from bot.silences import SilenceStore
    except ImportError:
        return None
    return SilenceStore(redis)


def _optional_digests(deps: Deps, source_factory: SourceFactory | None) -> Any:
    try:
        from bot.digest import DigestService
    except ImportError:
        return None
    config = deps.config
    by_alias = None
    if source_factory is not None:
        factory = source_factory

        def by_alias(alias: str) -> ClusterSource:
            return factory(alias, config.clusters[alias], config)

    return DigestService(config, deps.redis, deps.client, by_alias, deps.silences, deps.clock)
