"""What the handlers need, built once by `aksdiag serve` (or a test) and handed to
`create_app`: configuration, Redis, the Slack client and sender, the bot's own executor, the
run service, user-group cache, metrics and a clock. Nothing here starts at import time."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import Redis
from slack_sdk import WebClient

from bot.config import Config
from bot.digest import DigestService
from bot.executors import ContextExecutor
from bot.inflight import InFlight
from bot.limits import Limits, LimitSettings
from bot.metrics import Metrics
from bot.runs import RunService, SourceFactory
from bot.silences import SilenceStore
from bot.slack_send import Sender
from bot.usergroups import UsergroupCache
from diagnostics.collectors.settings import load_settings
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
    direct_post_s: float = 2.0  # an answer ready this fast is posted directly (no "running")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Raises SettingsError (a ValueError) naming a variable that holds a bad value."""
        return cls(**load_settings(cls, SETTINGS_ENV, env))


# Field -> environment variable; documented in docs/configuration.md.
SETTINGS_ENV = {
    "workers": "AKSDIAG_WORKERS",
    "run_workers": "AKSDIAG_RUN_WORKERS",
    "listener_threads": "AKSDIAG_LISTENER_THREADS",
    "run_timeout_s": "AKSDIAG_RUN_TIMEOUT_SECONDS",
    "command": "AKSDIAG_COMMAND",
    "lease_s": "AKSDIAG_LEASE_SECONDS",
    "sweep_s": "AKSDIAG_SWEEP_SECONDS",
    "direct_post_s": "AKSDIAG_DIRECT_POST_SECONDS",
}


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
    silences: SilenceStore
    digests: DigestService
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = time.time
    inflight: InFlight | None = None  # answers in flight, reaped when a replica dies
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
    """Wire the parts together."""
    settings = settings or Settings()
    metrics = metrics or Metrics()
    runs = RunService(
        config,
        redis,
        metrics,
        clock=clock,
        run_timeout_s=settings.run_timeout_s,
        run_workers=settings.run_workers,
        source_factory=source_factory,
    )
    by_alias = None
    if source_factory is not None:
        factory = source_factory

        def by_alias(alias: str) -> ClusterSource:
            return factory(alias, config.clusters[alias], config)

    silences = SilenceStore(redis)
    deps = Deps(
        config=config,
        redis=redis,
        client=client,
        executor=ContextExecutor(max_workers=settings.workers, thread_name_prefix="aksdiag-work"),
        runs=runs,
        metrics=metrics,
        sender=Sender(client, metrics),
        usergroups=UsergroupCache(client, config),
        silences=silences,
        digests=DigestService(config, redis, client, by_alias, silences, clock),
        settings=settings,
        clock=clock,
    )
    deps.inflight = InFlight(redis, runs.guard, lease_s=settings.lease_s, sweep_s=settings.sweep_s)
    deps.limits = Limits(redis, runs.guard, LimitSettings.from_env(), clock=clock)
    return deps
