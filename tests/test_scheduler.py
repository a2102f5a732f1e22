"""The digest schedule: crontab meaning kept (weekdays, day-of-month OR weekday), jobs wired by
name through an importable function, and several replicas posting each fire time once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.triggers.cron import CronTrigger
from test_digest import (
    CHANNEL,
    COVERED,
    EXCLUDED,
    STOPPED,
    UPDATING,
    SlackRecorder,
    service,
    snapshot,
    text_of,
    write_config,
)

from bot.config import ConfigError, load_config
from bot.digest import slot_of
from bot.render.digest import when
from bot.scheduler import (
    crontab_trigger,
    crontab_weekdays,
    fire_digest,
    job_id,
    start_scheduler,
    stop_scheduler,
)

LISBON = ZoneInfo("Europe/Lisbon")


def fire_times(trigger, start: datetime, n: int) -> list[datetime]:
    out, previous, now = [], None, start
    for _ in range(n):
        t = trigger.get_next_fire_time(previous, now)
        out.append(t)
        previous, now = t, t
    return out


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("6,0", "sat,sun"),
        ("sat,sun", "sat,sun"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("fri-sun", "fri,sat,sun"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "tue,thu,sat,sun"),  # crontab: Sunday, Tuesday, Thursday, Saturday
        ("1-5/2", "mon,wed,fri"),
        ("0-7", "*"),
        ("*", "*"),
        ("Monday,WED", "mon,wed"),
    ],
)
def test_crontab_weekdays_keep_their_crontab_meaning(field, expected):
    assert crontab_weekdays(field) == expected


@pytest.mark.parametrize("field", ["8", "mo", "3-1", "*/0", "", "1-x"])
def test_bad_weekdays_are_refused(field):
    with pytest.raises(ValueError):
        crontab_weekdays(field)


def test_a_weekday_schedule_fires_monday_to_friday_in_its_time_zone():
    start = datetime(2026, 11, 20, 9, 0, tzinfo=LISBON)  # a Friday, after 08:00
    ours = fire_times(crontab_trigger("0 8 * * 1-5", "Europe/Lisbon"), start, 6)
    assert [t.strftime("%a %d %H:%M") for t in ours] == [
        "Mon 23 08:00",
        "Tue 24 08:00",
        "Wed 25 08:00",
        "Thu 26 08:00",
        "Fri 27 08:00",
        "Mon 30 08:00",
    ]
    # The trap this avoids: APScheduler 3 reads 1-5 as Tuesday to Saturday.
    naive = fire_times(CronTrigger.from_crontab("0 8 * * 1-5", timezone=LISBON), start, 2)
    assert [t.strftime("%a") for t in naive] == ["Sat", "Tue"]


def test_local_time_holds_across_daylight_saving():
    start = datetime(2026, 3, 27, 12, 0, tzinfo=LISBON)  # DST starts on Sunday 29 March
    times = fire_times(crontab_trigger("0 8 * * *", "Europe/Lisbon"), start, 3)
    assert [t.astimezone(LISBON).strftime("%d %H:%M") for t in times] == [
        "28 08:00",
        "29 08:00",
        "30 08:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [8, 7, 7]


def test_day_of_month_and_weekday_both_set_fire_on_either_as_crontab_does():
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    times = fire_times(crontab_trigger("0 8 1 * 1", "UTC"), start, 4)
    assert [t.strftime("%a %d %b") for t in times] == [
        "Mon 23 Nov",
        "Mon 30 Nov",
        "Tue 01 Dec",
        "Mon 07 Dec",
    ]


def test_a_digest_with_an_impossible_cron_fails_the_configuration_check_with_its_name(tmp_path):
    """Caught when the file is read (every command), not when `serve` starts the scheduler."""
    digests = [{"name": "broken", "channel": CHANNEL, "cron": "61 8 * * *", "clusters": ["prod"]}]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod"}, digests)
    with pytest.raises(ConfigError, match=r"digests\[0\]: \(broken\) cron '61 8 \* \* \*'"):
        load_config(cfg)


def test_each_digest_is_one_job_naming_it_through_an_importable_function(tmp_path, redis_url):
    snapshot(tmp_path / "prod")
    digests = [
        {
            "name": "morning",
            "channel": CHANNEL,
            "cron": "0 8 * * 1-5",
            "timezone": "Europe/Lisbon",
            "clusters": ["prod"],
        },
        {"name": "weekly", "channel": CHANNEL, "cron": "30 9 * * mon", "clusters": ["prod"]},
    ]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod"}, digests)
    with SlackRecorder() as slack:
        svc = service(cfg, redis_url, slack)
        scheduler = start_scheduler(load_config(cfg), svc)
        try:
            jobs = {j.id: j for j in scheduler.get_jobs()}
            assert sorted(jobs) == ["digest:morning", "digest:weekly"]
            job = jobs["digest:morning"]
            assert job.func is fire_digest and job.func_ref == "bot.scheduler:fire_digest"
            assert job.args == (svc, "morning")
            assert job.coalesce is True and job.misfire_grace_time == 600
            assert job.next_run_time.astimezone(LISBON).strftime("%H:%M") == "08:00"
            assert job.next_run_time.weekday() < 5
        finally:
            stop_scheduler(scheduler)
        assert not scheduler.running


def test_two_running_schedulers_fire_a_slot_once_and_pass_its_scheduled_time(tmp_path, redis_url):
    """Real schedulers and executors: both replicas are told the job is due at the same past
    minute (within the misfire grace); each runs it; one post names that minute."""
    snapshot(tmp_path / "prod", **EXCLUDED)
    digests = [{"name": "yearly", "channel": CHANNEL, "cron": "0 0 1 1 *", "clusters": ["prod"]}]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod"}, digests)
    due = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    with SlackRecorder() as slack:
        ran = threading.Semaphore(0)
        events: list = []

        def record(event: object) -> None:
            events.append(event)
            ran.release()

        schedulers = []
        try:
            for _ in range(2):
                s = start_scheduler(load_config(cfg), service(cfg, redis_url, slack))
                s.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
                schedulers.append(s)
            for s in schedulers:
                s.modify_job(job_id("yearly"), next_run_time=due)
            assert ran.acquire(timeout=30) and ran.acquire(timeout=30)
        finally:
            for s in schedulers:
                stop_scheduler(s)
        assert [e.code for e in events] == [EVENT_JOB_EXECUTED, EVENT_JOB_EXECUTED]
        assert all(e.scheduled_run_time == due for e in events)
        assert sorted(e.retval is None for e in events) == [False, True]  # one posted
        (parent,) = slack.parents
        assert when(due.timestamp(), "UTC") in text_of(parent)
        done = redis.Redis.from_url(redis_url).get(
            f"aksdiag:digest:yearly:{slot_of(due, 'UTC')}:done"
        )
        assert isinstance(done, bytes) and done.startswith(b"posted ")


def test_two_replicas_every_minute_post_once_a_minute_and_then_only_what_changed(
    tmp_path, redis_url
):
    """Done when: two replicas, a digest due every minute; each minute yields exactly one post,
    and the second post reports only what changed."""
    snapshot(tmp_path / "prod", **EXCLUDED)
    snapshot(tmp_path / "stage", name="stage", **UPDATING)
    digests = [
        {
            "name": "minutely",
            "channel": CHANNEL,
            "cron": "* * * * *",
            "timezone": "Europe/Lisbon",
            "clusters": ["prod", "stage"],
        }
    ]
    cfg = write_config(tmp_path, {"prod": tmp_path / "prod", "stage": tmp_path / "stage"}, digests)
    with SlackRecorder() as slack:
        schedulers = [
            start_scheduler(load_config(cfg), service(cfg, redis_url, slack)) for _ in range(2)
        ]
        for s in schedulers:
            s.pause()  # time is driven below, with explicit fire times, not by the wall clock
        try:
            jobs = [s.get_job(job_id("minutely")) for s in schedulers]
            minutes = fire_times(jobs[0].trigger, datetime(2026, 11, 23, 7, 59, 30, tzinfo=UTC), 3)
            assert [m.strftime("%H:%M") for m in minutes] == ["08:00", "08:01", "08:02"]

            def fire(minute: datetime) -> list[str | None]:
                results: list[str | None] = []
                threads = [
                    threading.Thread(
                        target=lambda j=j: results.append(
                            j.func(*j.args, **j.kwargs, scheduled_for=minute)
                        )
                    )
                    for j in jobs
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                return results

            first = fire(minutes[0])
            assert sum(r is not None for r in first) == 1 and len(first) == 2
            assert len(slack.parents) == 1

            snapshot(tmp_path / "prod", **COVERED, **STOPPED)  # fixed one thing, broke another
            second = fire(minutes[1])
            assert sum(r is not None for r in second) == 1
            assert len(slack.parents) == 2
            text = text_of(slack.parents[-1])
            assert "Mon 23 Nov 08:01 Europe/Lisbon" in text
            new = text.split("*New*")[1].split("*Resolved*")[0]
            resolved = text.split("*Resolved*")[1].split("\n\n")[0]
            assert [line.split("`")[1] for line in new.splitlines()[1:] if "`" in line] == [
                "cluster.stopped"
            ]
            assert [
                line.split("`")[1] for line in resolved.splitlines()[1:] if line.startswith("•")
            ] == ["apiserver.authorized-ip.client-excluded"]
            assert "cluster.provisioning-failed" not in new + resolved  # stage: unchanged

            third = fire(minutes[2])
            assert sum(r is not None for r in third) == 1
            assert len(slack.parents) == 3 and "*Nothing changed*" in text_of(slack.parents[-1])
            titles = [text_of(p).splitlines()[0] for p in slack.parents]
            assert [t.split(" · ")[1] for t in titles] == [
                "Mon 23 Nov 08:00 Europe/Lisbon",
                "Mon 23 Nov 08:01 Europe/Lisbon",
                "Mon 23 Nov 08:02 Europe/Lisbon",
            ]
        finally:
            for s in schedulers:
                stop_scheduler(s)
