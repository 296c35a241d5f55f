"""Time placeholders of SQL-mode exports: `{{run_date}}` and friends, bound, never pasted.

A scheduled "yesterday's orders" must mean the right day for every run, a late one too, so
the values come from the run's logical time (its firing) in the schedule's timezone:

    {{run_date}}       date of the firing            {{run_time}}       the firing, an instant
    {{prev_run_date}}  date of the previous firing   {{prev_run_time}}  the previous firing

Times are instants carrying the schedule's timezone (not naive wall times), so the export's
session, which runs in that same timezone, compares them rightly with a timestamp with or
without time zone and with a date. A run started by hand uses its start time in the task's
timezone (the datasource's, default UTC), and the previous day as "previous". Each
placeholder stands where a value may stand, unquoted: `WHERE order_date = {{run_date}}`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.model import Schedule
from service.domain.schedule import fire_times, timezone_of

NAMES = ("run_date", "run_time", "prev_run_date", "prev_run_time")
PATTERN = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# What a placeholder reads as while the pre-check parses the statement: a plain column name,
# so it parses wherever a value may stand and shows up in the tree when it is not quoted.
_STAND_IN = "woxqaq_placeholder_{}"


def used(statement: str) -> list[str]:
    return [m.group(1) for m in PATTERN.finditer(statement)]


def unknown(statement: str) -> list[str]:
    return sorted({name for name in used(statement) if name not in NAMES})


def for_parsing(statement: str) -> str:
    """The statement with each placeholder as an identifier the parser accepts."""
    return PATTERN.sub(lambda m: _STAND_IN.format(m.group(1)), statement)


def stand_in(name: str) -> str:
    return _STAND_IN.format(name)


def to_bind_params(statement: str) -> str:
    """The statement in SQLAlchemy text() syntax: placeholders become `:name` binds and every
    other colon is escaped, so `':x'` or `'10:30'` in a string literal stay text."""
    out, last = [], 0
    for m in PATTERN.finditer(statement):
        out.append(statement[last : m.start()].replace(":", r"\:"))
        out.append(f":{m.group(1)}")
        last = m.end()
    out.append(statement[last:].replace(":", r"\:"))
    return "".join(out)


def logical_values(
    statement: str, schedule: Schedule, logical_time: datetime, zone: ZoneInfo | None = None
) -> Mapping[str, date | datetime]:
    """Placeholder values for a run whose logical time is `logical_time`; none when the
    statement uses no placeholder (a table export, a plain query), which costs nothing.

    `zone` is the task's timezone (see `task_zone`); by default the schedule's, or UTC."""
    if not used(statement):
        return {}
    tz = zone or task_zone(schedule)
    local = logical_time.astimezone(tz)
    previous = _previous_firing(schedule, logical_time) if schedule.is_cron else None
    # Aware arithmetic in one zone is by the wall clock: the same time the day before.
    prev_local = previous.astimezone(tz) if previous else local - timedelta(days=1)
    return {
        "run_date": local.date(),
        "run_time": local,
        "prev_run_date": prev_local.date(),
        "prev_run_time": prev_local,
    }


def task_zone(schedule: Schedule, datasource_zone: str = "") -> ZoneInfo:
    """The timezone a task's times mean: its schedule's, else its datasource's, else UTC.

    A one-off task's timezone field is not checked (nothing fires), so it is not used."""
    if schedule.is_cron:
        return timezone_of(schedule)
    return ZoneInfo(datasource_zone or "UTC")


# Windows searched back for the previous firing: small first, so an every-minute schedule
# walks an hour of firings, not a year of them.
_LOOK_BACK = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=370),
)


def _previous_firing(schedule: Schedule, logical_time: datetime) -> datetime | None:
    """The firing before `logical_time`, by the same DST rules the scheduler fires by."""
    until = logical_time - timedelta(microseconds=1)
    for window in _LOOK_BACK:
        last = deque(fire_times(schedule, logical_time - window, until=until), maxlen=1)
        if last:
            return last[0]
    return None
