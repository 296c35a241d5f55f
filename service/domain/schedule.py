"""Schedule rules: a five-field crontab in an IANA timezone, read by APScheduler's CronTrigger."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from service.domain.model import Schedule, Trigger


def timezone_of(schedule: Schedule) -> ZoneInfo:
    return ZoneInfo(schedule.timezone or "UTC")


def cron_trigger(schedule: Schedule) -> CronTrigger:
    """APScheduler's trigger for the schedule (DST-correct in its timezone)."""
    return CronTrigger.from_crontab(schedule.cron, timezone=timezone_of(schedule))


def schedule_problems(schedule: Schedule) -> list[str]:
    """What is wrong with a schedule, in words that say what to fix; empty when it is fine."""
    if schedule.trigger is Trigger.CURRENT:
        if schedule.cron.strip():
            return ["a cron expression was given but the trigger is CURRENT; set trigger to CRON"]
        return []
    problems = []
    fields = schedule.cron.split()
    if len(fields) != 5:
        problems.append(
            f"cron {schedule.cron!r} has {len(fields)} fields; use five: "
            "minute hour day-of-month month day-of-week, e.g. '0 9 * * MON-FRI'"
        )
    try:
        tz = timezone_of(schedule)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"timezone {schedule.timezone!r} is not an IANA timezone name; "
            "use one like 'Asia/Shanghai' or 'Europe/Berlin'"
        )
        tz = None
    if len(fields) == 5:
        try:
            trigger = CronTrigger.from_crontab(schedule.cron, timezone=tz or UTC)
        except ValueError as exc:
            problems.append(f"cron {schedule.cron!r} is not valid: {exc}")
        else:
            if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
                problems.append(f"cron {schedule.cron!r} never fires")
    if not schedule.channel.strip():
        problems.append("a scheduled export needs a channel to deliver each run to")
    return problems


def next_fire_times(
    schedule: Schedule, count: int = 3, after: datetime | None = None
) -> list[datetime]:
    """The next `count` firings after `after` (default now), in the schedule's timezone."""
    trigger = cron_trigger(schedule)
    times: list[datetime] = []
    previous: datetime | None = None
    now = (after or datetime.now(UTC)).astimezone(timezone_of(schedule))
    while len(times) < count:
        nxt = trigger.get_next_fire_time(previous, now)
        if nxt is None:
            break
        times.append(nxt)
        previous, now = nxt, nxt
    return times
