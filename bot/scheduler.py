"""The digest schedule: APScheduler 3 on every replica, each fire time posted once.

Every replica runs its own `BackgroundScheduler` with the in-memory job store: the cron
definitions live in the configuration, and a shared persistent job store would not be a lock
(two schedulers on one Redis job store run every job twice). What makes a fire time post once
is the Redis claim in `DigestService.run_scheduled`, keyed by the *scheduled* time: APScheduler
3 does not pass that time to a job, so `SlotExecutor` (a thread pool executor, APScheduler's
extension point for executors) hands it over as `scheduled_for`.

Crontab fields keep their crontab meaning here:
- day of week: crontab counts from Sunday = 0 (7 is Sunday too), APScheduler 3 from Monday = 0,
  so `CronTrigger.from_crontab('0 8 * * 1-5')` would fire Tuesday to Saturday. The field is
  expanded to day names instead (`1-5` -> `mon,tue,wed,thu,fri`, `*/2` -> `sun,tue,thu,sat`);
- when both day of month and day of week are restricted, crontab fires when *either* matches
  (APScheduler would want both): that becomes an `OrTrigger` of the two.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from bot.config import Config, ConfigError
from bot.crontab import crontab_trigger, crontab_weekdays
from bot.digest import DigestService

log = logging.getLogger(__name__)

MISFIRE_GRACE_S = 600  # a replica that wakes up late still posts within 10 minutes
MAX_INSTANCES = 2  # a slow digest must not make the next fire time skip on this replica


def fire_digest(
    service: DigestService, name: str, scheduled_for: datetime | None = None
) -> str | None:
    """The job every digest schedules: one fire time of digest `name`."""
    if scheduled_for is None:
        raise RuntimeError("fire_digest runs through SlotExecutor, which passes scheduled_for")
    return service.run_scheduled(name, scheduled_for)


class _AtSlot:
    """A job as the executor runs it for one fire time: the same job, plus `scheduled_for`."""

    __slots__ = ("_job", "kwargs")

    def __init__(self, job: Any, run_time: datetime) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "scheduled_for": run_time}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class SlotExecutor(BasePoolExecutor):  # type: ignore[misc]  # APScheduler 3 has no types
    """APScheduler's thread pool executor, passing each job its scheduled fire time."""

    def __init__(self, max_workers: int = 4) -> None:
        from concurrent.futures import ThreadPoolExecutor

        super().__init__(ThreadPoolExecutor(max_workers, thread_name_prefix="digest-job"))

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # Jobs coalesce, so one run time comes (the latest when several were missed).
        super()._do_submit_job(_AtSlot(job, run_times[-1]), run_times[-1:])


def _missed(event: JobExecutionEvent) -> None:
    log.warning(
        "%s missed its fire time %s on this replica (more than %ds late); another replica "
        "may have posted it",
        event.job_id,
        event.scheduled_run_time,
        MISFIRE_GRACE_S,
    )


def job_id(name: str) -> str:
    return f"digest:{name}"


def start_scheduler(
    config: Config, service: DigestService, *, max_workers: int = 4
) -> BackgroundScheduler:
    """Schedule every configured digest on this replica and start the scheduler."""
    triggers: dict[str, BaseTrigger] = {}
    for digest in config.digests:
        try:
            triggers[digest.name] = crontab_trigger(digest.cron, digest.timezone)
        except ValueError as exc:
            raise ConfigError(f"digest {digest.name!r}: cron {digest.cron!r}: {exc}") from None
    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": SlotExecutor(max_workers)},
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": MISFIRE_GRACE_S,
            "max_instances": MAX_INSTANCES,
        },
        timezone=UTC,
    )
    for name, trigger in triggers.items():
        scheduler.add_job(
            fire_digest,
            trigger=trigger,
            args=(service, name),
            id=job_id(name),
            name=f"digest {name}",
            replace_existing=True,
        )
    scheduler.add_listener(_missed, EVENT_JOB_MISSED)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("scheduled %s; next at %s", job.name, job.next_run_time)
    return scheduler


def stop_scheduler(s: BackgroundScheduler, wait: bool = True) -> None:
    """Stop firing; with `wait`, let digests already running finish (their claims hold)."""
    if s.running:
        s.shutdown(wait=wait)


__all__ = [
    "SlotExecutor",
    "crontab_trigger",
    "crontab_weekdays",
    "fire_digest",
    "start_scheduler",
    "stop_scheduler",
]
