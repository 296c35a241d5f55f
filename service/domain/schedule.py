"""Schedule rules: a five-field crontab in an IANA timezone, read by APScheduler's CronTrigger.

Two crontab habits APScheduler 3 does not share are settled here: day-of-week numbers are
crontab's (0 and 7 are Sunday; APScheduler's own 0 is Monday), and the firings of a
scheduled task are computed from the task store's record of what already fired, so every
replica and every restart agrees on what is due. When both day-of-month and day-of-week are
restricted, both must match (APScheduler's rule; classic cron fires when either does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from service.domain.model import Schedule, Trigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_ITEM = re.compile(r"^(?:(\*)|([a-z]{3}|\d)(?:-([a-z]{3}|\d))?)(?:/(\d+))?$")


def timezone_of(schedule: Schedule) -> ZoneInfo:
    return ZoneInfo(schedule.timezone or "UTC")


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field as APScheduler day names: `1-5` → `mon,tue,wed,thu,fri`."""
    days: set[int] = set()
    for item in field.lower().split(","):
        m = _DOW_ITEM.match(item)
        if not m:
            raise ValueError(
                f"day-of-week {field!r} is not understood: use numbers 0-7 (0 and 7 are "
                "Sunday) or names SUN-SAT, as lists (1,3), ranges (MON-FRI) or steps (*/2)"
            )
        star, first, last, step = m.groups()
        lo, hi = (0, 6) if star else (_day_number(first), _day_number(last or first))
        if last and hi == 0 and lo > 0:
            hi = 7  # "5-7" and "FRI-SUN" run through Sunday
        if lo > hi:
            raise ValueError(f"day-of-week range {item!r} runs backwards: write it low to high")
        if step and int(step) == 0:
            raise ValueError(f"day-of-week step in {item!r} must be 1 or more")
        start_only = step and not last and not star
        days.update(d % 7 for d in range(lo, 7 if start_only else hi + 1, int(step or 1)))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day_number(token: str) -> int:
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(f"day-of-week {token} is out of range: use 0-7 (0 and 7 are Sunday)")
        return number
    if token not in DAY_NAMES:
        raise ValueError(f"day-of-week {token!r} is not a day: use SUN, MON, … SAT")
    return DAY_NAMES.index(token)


def cron_trigger(schedule: Schedule, tz: ZoneInfo | None = None) -> CronTrigger:
    """APScheduler's trigger for the schedule (DST-correct in its timezone)."""
    fields = schedule.cron.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, dow = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_day_of_week(dow) if dow != "*" else "*",
        timezone=tz or timezone_of(schedule),
    )


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
            trigger = cron_trigger(schedule, tz or ZoneInfo("UTC"))
        except ValueError as exc:
            problems.append(f"cron {schedule.cron!r} is not valid: {exc}")
        else:
            if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
                problems.append(f"cron {schedule.cron!r} never fires")
    return problems


def fire_times(
    schedule: Schedule, after: datetime, until: datetime | None = None
) -> Iterator[datetime]:
    """Firings strictly after `after` (and at or before `until`), in the schedule's timezone.

    DST: a wall-clock time that occurs twice (the autumn repeated hour) fires once, at its
    first occurrence, as cron does; one that does not exist (the spring gap) fires once, an
    hour later (02:30 becomes 03:30 summer time), as APScheduler places it. Both rules
    depend on the firing alone, never on what this call saw before, so every tick, replica
    and restart that starts its search elsewhere agrees on them.
    """
    trigger = cron_trigger(schedule)
    tz = timezone_of(schedule)
    # Arithmetic in UTC: an aware datetime plus a timedelta is wall-clock arithmetic, which
    # loses the autumn hour's second pass. The trigger's `now` is inclusive and rounded up
    # to the second, so one microsecond on makes "strictly after" exact.
    now = after.astimezone(UTC) + timedelta(microseconds=1)
    while True:
        nxt = trigger.get_next_fire_time(None, now)
        if nxt is None or (until is not None and nxt > until):
            return
        moment = nxt.astimezone(UTC)
        if not _second_pass(nxt):
            # Re-read from UTC: APScheduler labels a spring-gap firing with the wall time
            # that does not exist (02:30 EST); people and {{run_time}} should see 03:30 EDT.
            yield moment.astimezone(tz)
        now = moment + timedelta(microseconds=1)


def _second_pass(firing: datetime) -> bool:
    """A firing in the autumn repeated hour's second pass, whose wall time already fired.

    APScheduler marks it `fold=1`; read with `fold=0` the same wall time is an hour earlier.
    A spring-gap time has `fold=0` and is never a second pass.
    """
    return firing.replace(fold=0).astimezone(UTC) != firing.astimezone(UTC)


def next_fire_times(
    schedule: Schedule, count: int = 3, after: datetime | None = None
) -> list[datetime]:
    """The next `count` firings after `after` (default now), in the schedule's timezone."""
    return list(islice(fire_times(schedule, after or datetime.now(UTC)), count))


def describe_next_firings(schedule: Schedule, count: int = 3, after: datetime | None = None) -> str:
    """`2027-03-01 09:00 CST, …` for people to check what a schedule means."""
    return ", ".join(describe_firing(t) for t in next_fire_times(schedule, count, after))


def describe_firing(moment: datetime) -> str:
    """A firing as people read it, in the schedule's own timezone: `2027-03-01 09:00 CST`."""
    return f"{moment:%Y-%m-%d %H:%M %Z}"


# How many firings one look at a long outage counts; the rest are found on the next tick.
MAX_SCAN = 10_000


@dataclass(frozen=True)
class DueFirings:
    """What a schedule owes at `now`, given the last firing it has dealt with.

    A firing older than the grace is `missed` (recorded, never run); those within the
    grace are coalesced into one run, for the latest of them.
    """

    run: datetime | None = None
    coalesced: int = 0
    missed: int = 0
    first_missed: datetime | None = None
    last_missed: datetime | None = None


def due_firings(
    schedule: Schedule, dealt_with: datetime, now: datetime, grace: timedelta
) -> DueFirings:
    horizon = now - grace
    missed = list(
        islice(
            fire_times(schedule, dealt_with, until=horizon - timedelta(microseconds=1)), MAX_SCAN
        )
    )
    if len(missed) == MAX_SCAN:  # a long outage: deal with this much now, the rest next time
        return DueFirings(missed=len(missed), first_missed=missed[0], last_missed=missed[-1])
    within = list(fire_times(schedule, missed[-1] if missed else dealt_with, until=now))
    return DueFirings(
        run=within[-1] if within else None,
        coalesced=max(0, len(within) - 1),
        missed=len(missed),
        first_missed=missed[0] if missed else None,
        last_missed=missed[-1] if missed else None,
    )
