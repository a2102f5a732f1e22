"""Crontab lines as APScheduler 3 triggers, with their crontab meaning kept (see bot.scheduler):
the configuration check (bot.config) and the scheduler parse a line the same way, so a line that
cannot fire (`0 25 * * 1-9`) fails `aksdiag` at load time, not at `serve`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering
_FULL_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def _weekday(token: str) -> int:
    """A crontab weekday (0-7 or a name) -> 0-7, Sunday = 0 or 7."""
    word = token.strip().lower()
    if word.isdigit() and 0 <= int(word) <= 7:
        return int(word)
    for i, day in enumerate(_CRON_DAYS):
        if word in (day, _FULL_DAYS[i]):
            return i
    raise ValueError(f"{token!r} is not a weekday (0-7 with 0 and 7 = Sunday, or sun..sat)")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3's terms: `*`, or day names."""
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 0 if step_text else 1
        if step < 1:
            raise ValueError(f"{part!r}: the step after / must be a positive number")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _weekday(first), _weekday(last)
            if high < low and high == 0:  # `fri-sun`
                high = 7
            if high < low:
                raise ValueError(f"{part!r}: a range goes from the earlier day to the later one")
        else:
            low = _weekday(span)
            high = 7 if step_text else low  # `1/2`: from Monday on, every other day
        days.update(d % 7 for d in range(low, high + 1, step))
    if len(days) == 7:
        return "*"
    monday_first = sorted(days, key=lambda d: (d - 1) % 7)
    return ",".join(_CRON_DAYS[d] for d in monday_first)


def crontab_trigger(cron: str, timezone: str) -> BaseTrigger:
    """A trigger that fires when this 5-field crontab line would, in `timezone`."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"{cron!r} is not a 5-field crontab line (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    tz = ZoneInfo(timezone)
    days = crontab_weekdays(weekday)
    if not day.startswith("*") and not weekday.startswith("*"):
        return OrTrigger(
            [
                CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=tz),
            ]
        )
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=tz
    )


__all__ = ["crontab_trigger", "crontab_weekdays"]
