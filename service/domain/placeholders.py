"""Time placeholders of SQL-mode exports: `{{run_date}}` and friends, bound, never pasted.

A scheduled "yesterday's orders" must mean the right day for every run, a late one too, so
the values come from the run's logical time (its firing) in the schedule's timezone:

    {{run_date}}       date of the firing            {{run_time}}       its local date and time
    {{prev_run_date}}  date of the previous firing   {{prev_run_time}}  its local date and time

A run started by hand uses its start time (in UTC), and the previous day as "previous". Each
placeholder stands where a value may stand, unquoted: `WHERE order_date = {{run_date}}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.model import Schedule
from service.domain.schedule import cron_trigger, timezone_of

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


def logical_values(schedule: Schedule, logical_time: datetime) -> Mapping[str, date | datetime]:
    """Placeholder values for a run whose logical time is `logical_time`."""
    # A one-off task's timezone field is not checked (nothing fires): its runs read UTC.
    tz = timezone_of(schedule) if schedule.is_cron else ZoneInfo("UTC")
    local = logical_time.astimezone(tz)
    previous = _previous_firing(schedule, logical_time) if schedule.is_cron else None
    prev_local = previous.astimezone(tz) if previous else local - timedelta(days=1)
    return {
        "run_date": local.date(),
        "run_time": local.replace(tzinfo=None),
        "prev_run_date": prev_local.date(),
        "prev_run_time": prev_local.replace(tzinfo=None),
    }


def _previous_firing(schedule: Schedule, logical_time: datetime) -> datetime | None:
    """The firing before `logical_time`: searched backwards in widening windows."""
    trigger = cron_trigger(schedule)
    for days in (1, 8, 32, 370):
        start = logical_time - timedelta(days=days)
        found, now, prev = None, start, None
        while True:
            nxt = trigger.get_next_fire_time(prev, now)
            if nxt is None or nxt >= logical_time:
                break
            found, prev, now = nxt, nxt, nxt + timedelta(seconds=1)
        if found is not None:
            return found
    return None
