"""Per-type value decisions that every writer and every source path shares.

Small named functions, so that a CSV writer, an XLSX writer (whichever library) and the
PostgreSQL COPY path make the same decision for the same value:

    ServerText            a value the database rendered itself (an interval, JSON, a date
                          Python cannot hold): written as that text, never re-interpreted
    offset_text           a UTC offset as +HH:MM (+HH:MM:SS for historic local mean times)
    excel_datetime        the naive wall time Excel can hold, or None: write ISO text
    excel_offset_format   the number format that shows a zoned time's offset beside it
    escape_formula        text a spreadsheet would run as a formula, made inert
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

# Excel's calendar: 1900-01-01 to 9999-12-31 23:59:59.999 (its precision is milliseconds,
# so anything later rounds past the last day Excel shows). A time on 1900-01-01 would be
# written as a bare time of day (Excel's day 0), so times start a day later.
EXCEL_FIRST_DAY = date(1900, 1, 1)
EXCEL_FIRST = datetime(1900, 1, 2)
EXCEL_LAST = datetime(9999, 12, 31, 23, 59, 59, 999_000)

FORMULA_STARTS = ("=", "+", "-", "@")


class ServerText(str):
    """Text the database produced for a non-text value: kept exactly, never escaped."""

    __slots__ = ()


def offset_text(offset: timedelta) -> str:
    """`+08:00`, `-04:00`, `+05:30`, or with seconds where a historic zone has them."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def excel_datetime(value: datetime | date) -> datetime | date | None:
    """The value as Excel can hold it (a zoned time as its own wall time), or None when it
    lies outside Excel's calendar and must be written as ISO text instead."""
    if isinstance(value, datetime):
        wall = value.replace(tzinfo=None)
        return wall if EXCEL_FIRST <= wall <= EXCEL_LAST else None
    return value if value >= EXCEL_FIRST_DAY else None


def excel_offset_format(base: str, value: datetime) -> str:
    """`base` (an Excel date format) with the value's UTC offset shown as a literal: Excel
    has no time zones, so the cell holds the wall time and the format says which zone."""
    offset = value.utcoffset()
    return base if offset is None else f'{base}"{offset_text(offset)}"'


def escape_formula(text: str) -> str:
    """Text starting with = + - @ prefixed with ' (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
