"""Import rules, pure: which tables may be written, how file columns map onto a table's
columns, and how each cell becomes a value of its column's type within its constraints.

Cells come in as text (CSV) or as a spreadsheet's values (XLSX: str, int, float, bool,
datetime); an empty cell is NULL, except in a NOT NULL text column, where it is ''.
"""

from __future__ import annotations

import enum
import functools
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Context, Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any

MAX_PROBLEMS_LISTED = 20


class ValueKind(enum.Enum):
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    BOOLEAN = "boolean"
    UUID = "uuid"
    JSON = "json"
    OTHER = "other"  # passed as text; the database judges it


@dataclass(frozen=True)
class TargetColumn:
    """A live column of the target table, as far as the conversion needs to know it."""

    name: str
    kind: ValueKind
    nullable: bool = True
    has_default: bool = False  # may be left out of the file
    length: int | None = None  # TEXT: the most characters
    precision: int | None = None  # DECIMAL: digits in all
    scale: int | None = None  # DECIMAL: digits after the point
    min_int: int | None = None  # INTEGER range
    max_int: int | None = None
    with_timezone: bool = False  # DATETIME: a timestamp with time zone
    choices: tuple[str, ...] = ()  # an enum's values


class BadValue(ValueError):
    """A cell its column cannot hold; the message says why (the value is added by the caller)."""


def is_writable(patterns: Sequence[str], schema: str, table: str, default_schema: str) -> bool:
    """Whether `schema.table` matches one of the `writable_tables` globs ("staging.*",
    "promo_codes"); a glob without a schema part means the datasource's default schema."""
    for pattern in patterns:
        if "." in pattern:
            if fnmatchcase(f"{schema}.{table}", pattern):
                return True
        elif schema == default_schema and fnmatchcase(table, pattern):
            return True
    return False


# -- column mapping ----------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """Which file column feeds which table column: `positions[i]` is the file column of
    `columns[i]`."""

    columns: tuple[TargetColumn, ...]
    positions: tuple[int, ...]
    file_names: tuple[str, ...]  # each mapped file column's header (or "column N")


def map_columns(
    header: Sequence[str] | None,
    requested: Sequence[str],
    table: Sequence[TargetColumn],
    table_name: str,
) -> tuple[Mapping | None, list[str]]:
    """Map file columns onto `table`'s columns: by `requested` (one table column per file
    column, in order; "" skips that file column) or else by the header's names."""
    by_name = {c.name: c for c in table}
    by_folded = {c.name.casefold(): c for c in table}
    problems: list[str] = []
    names = list(requested) if requested else list(header or ())
    if requested and header is not None and len(requested) != len(header):
        problems.append(
            f"columns lists {len(requested)} names but the file has {len(header)} columns: "
            "give one table column per file column (an empty name skips one)"
        )
    chosen: list[tuple[int, TargetColumn]] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        label = name.strip()
        if not label and requested:
            continue  # skipped on purpose
        column = by_name.get(label) or by_folded.get(label.casefold())
        if column is None:
            problems.append(
                f"file column {i + 1} ({label or 'no name'}) is not a column of table "
                f"{table_name}; its columns are: {', '.join(by_name)[:500]}"
            )
            continue
        if column.name in seen:
            problems.append(
                f"table column {column.name} is given by file columns {seen[column.name] + 1} "
                f"and {i + 1}: map each table column once"
            )
            continue
        seen[column.name] = i
        chosen.append((i, column))
    missing = [c.name for c in table if not c.nullable and not c.has_default and c.name not in seen]
    if missing:
        problems.append(
            f"table {table_name} needs a value in {', '.join(missing)} (NOT NULL without a "
            "default): add the column(s) to the file"
        )
    if not chosen and not problems:
        problems.append("no file column maps onto a table column")
    if problems:
        return None, problems
    header_names = list(header) if header is not None else []
    return (
        Mapping(
            columns=tuple(c for _, c in chosen),
            positions=tuple(i for i, _ in chosen),
            file_names=tuple(
                header_names[i] if i < len(header_names) else f"column {i + 1}" for i, _ in chosen
            ),
        ),
        [],
    )


# -- values ------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def converter(column: TargetColumn) -> Callable[[Any], Any]:
    """A function from a cell to the column's value; raises BadValue. Called for every cell
    of a file: the common cases take few steps."""
    full = _full_converter(column)
    fast = _TEXT_FAST_PATHS.get(column.kind)
    return fast(column, full) if fast is not None else full


def _full_converter(column: TargetColumn) -> Callable[[Any], Any]:
    """The converter that decides every cell; `converter` puts a fast path before it."""
    convert = _CONVERTERS[column.kind]
    text_column = column.kind in (ValueKind.TEXT, ValueKind.OTHER)
    empty: str | None = "" if text_column and not column.nullable else None
    refuse_empty = empty is None and not column.nullable
    plain_text = text_column and column.length is None and not column.choices

    def run(cell: Any) -> Any:
        if cell is None or cell == "":
            if refuse_empty:
                raise BadValue("is empty but the column is NOT NULL")
            return empty
        if plain_text and cell.__class__ is str and "\x00" not in cell:
            return cell
        return convert(cell, column)

    return run


# Per kind, a converter for the cells of a CSV file: the common text of a value takes a few
# steps here, and any other cell (empty, an XLSX value, odd text) goes to the full converter
# `general`, which decides it. Each accepts only text the full converter would turn into the
# same value.


def _fast_text(column: TargetColumn, general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if column.length is None or column.choices:
        return general
    length = column.length

    def run(cell: Any) -> Any:
        if cell.__class__ is str and cell and len(cell) <= length and "\x00" not in cell:
            return cell
        return general(cell)

    return run


def _fast_integer(column: TargetColumn, general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    lowest = column.min_int if column.min_int is not None else -math.inf
    highest = column.max_int if column.max_int is not None else math.inf

    def run(cell: Any) -> Any:
        if cell.__class__ is str and cell and "_" not in cell:
            try:
                value = int(cell)
            except ValueError:
                return general(cell)
            if lowest <= value <= highest:
                return value
        return general(cell)

    return run


def _fast_decimal(column: TargetColumn, general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if column.precision is None:
        return general
    scale = column.scale or 0
    whole = column.precision - scale
    if whole < 1:
        return general
    # ASCII digits only, no more than the column holds before and after the point.
    fraction = rf"(?:\.[0-9]{{1,{scale}}})?" if scale else ""
    plain = re.compile(rf"-?[0-9]{{1,{whole}}}{fraction}").fullmatch

    def run(cell: Any) -> Any:
        if cell.__class__ is str and plain(cell):
            return Decimal(cell)
        return general(cell)

    return run


def _fast_date(column: TargetColumn, general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(cell: Any) -> Any:
        if cell.__class__ is str and cell:
            try:
                return date.fromisoformat(cell)
            except ValueError:
                pass
        return general(cell)

    return run


def text_passer(column: TargetColumn) -> Callable[[Any], Any]:
    """For a run whose database reads the column's text itself (the pre-check converted
    every cell of this very file already): only the empty cell is decided here."""
    empty = _empty_text(column)

    def run(cell: Any) -> Any:  # None: a cell missing from a short row
        return empty if cell is None or cell == "" else cell

    return run


def text_row(
    columns: Sequence[TargetColumn], positions: Sequence[int]
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """`text_passer` over a whole row: the cells at `positions`, each empty or missing one
    decided for its column, in one expression compiled for the mapping (per-cell calls were
    most of such a run's own time). Cells are text or None, so `or` is the empty test."""
    empties = {f"empty{i}": _empty_text(c) for i, c in enumerate(columns)}
    cells = ", ".join(f"c[{int(p)}] or empty{i}" for i, p in enumerate(positions))
    compiled: Callable[[Sequence[Any]], tuple[Any, ...]] = eval(f"lambda c: ({cells},)", empties)
    return compiled


def _empty_text(column: TargetColumn) -> str | None:
    """What an empty cell of this column is: NULL, or '' in a NOT NULL text column."""
    text_column = column.kind in (ValueKind.TEXT, ValueKind.OTHER)
    return "" if text_column and not column.nullable else None


def _text(cell: Any, column: TargetColumn) -> str:
    if isinstance(cell, datetime):
        text = cell.isoformat(sep=" ")
    elif isinstance(cell, float) and cell.is_integer():
        text = str(int(cell))
    else:
        text = str(cell)
    if column.length is not None and len(text) > column.length:
        raise BadValue(f"is {len(text)} characters long; the column holds {column.length}")
    if column.choices and text not in column.choices:
        raise BadValue(f"is not one of {', '.join(column.choices)[:200]}")
    if "\x00" in text:
        raise BadValue("contains a NUL character")
    return text


def _integer(cell: Any, column: TargetColumn) -> int:
    if cell.__class__ is str:
        try:
            value = int(cell)  # also takes spaces around and a sign
        except ValueError:
            raise BadValue("is not a whole number") from None
        if "_" in cell:  # int() reads 1_000 as a thousand; a file means something else
            raise BadValue("is not a whole number")
    elif isinstance(cell, bool):
        value = int(cell)
    elif isinstance(cell, int):
        value = cell
    elif isinstance(cell, float):
        if not cell.is_integer():
            raise BadValue("is not a whole number")
        value = int(cell)
    else:
        raise BadValue("is not a whole number")
    if column.min_int is not None and value < column.min_int:
        raise BadValue(f"is below the column's smallest value {column.min_int}")
    if column.max_int is not None and value > column.max_int:
        raise BadValue(f"is above the column's largest value {column.max_int}")
    return value


def _decimal(cell: Any, column: TargetColumn) -> Decimal:
    try:
        value = Decimal(repr(cell) if isinstance(cell, float) else cell.strip())
    except (InvalidOperation, AttributeError, TypeError):
        if isinstance(cell, int) and not isinstance(cell, bool):
            value = Decimal(cell)
        else:
            raise BadValue("is not a number") from None
    if not value.is_finite() or (cell.__class__ is str and "_" in cell):
        raise BadValue("is not a number")
    if column.precision is None:
        return value
    scale = column.scale or 0
    whole = value.adjusted() + 1 if value and value.adjusted() >= 0 else 0
    if whole > column.precision - scale:
        raise BadValue(
            f"has {whole} digits before the point; the column holds "
            f"{column.precision - scale} (numeric({column.precision},{scale}))"
        )
    # Trailing zeros beyond the scale lose nothing: 1.50 fits numeric(5,1).
    if value.quantize(_quantum(scale), context=_WIDE) != value:
        places = -int(value.as_tuple().exponent)
        raise BadValue(f"has {places} decimal places; the column keeps {scale}")
    return value


_WIDE = Context(prec=4000)  # PostgreSQL numerics hold up to 1,000 digits


@functools.cache
def _quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)


def _float(cell: Any, column: TargetColumn) -> float:
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return float(cell)
    try:
        return float(str(cell).strip())
    except ValueError:
        raise BadValue("is not a number") from None


def _date(cell: Any, column: TargetColumn) -> date:
    if isinstance(cell, datetime):
        if cell.time() != time(0):
            raise BadValue("has a time of day; the column holds dates only")
        return cell.date()
    if isinstance(cell, date):
        return cell
    try:
        return date.fromisoformat(str(cell).strip())
    except ValueError:
        raise BadValue("is not a date (YYYY-MM-DD)") from None


def _datetime(cell: Any, column: TargetColumn) -> datetime:
    if isinstance(cell, datetime):
        value = cell
    elif isinstance(cell, date):
        value = datetime(cell.year, cell.month, cell.day)
    else:
        try:
            value = datetime.fromisoformat(str(cell).strip())
        except ValueError:
            raise BadValue("is not a date and time (YYYY-MM-DD HH:MM:SS)") from None
    if column.with_timezone:
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # naive means UTC
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _time(cell: Any, column: TargetColumn) -> time:
    if isinstance(cell, time):
        return cell
    if isinstance(cell, datetime):
        return cell.time()
    try:
        return time.fromisoformat(str(cell).strip())
    except ValueError:
        raise BadValue("is not a time of day (HH:MM:SS)") from None


def _boolean(cell: Any, column: TargetColumn) -> bool:
    if isinstance(cell, bool):
        return cell
    text = str(cell).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue("is not true or false")


def _uuid(cell: Any, column: TargetColumn) -> str:
    try:
        return str(uuid.UUID(str(cell).strip()))
    except ValueError:
        raise BadValue("is not a UUID") from None


def _json(cell: Any, column: TargetColumn) -> str:
    text = str(cell)
    try:
        json.loads(text)
    except ValueError:
        raise BadValue("is not valid JSON") from None
    return text


_CONVERTERS: dict[ValueKind, Callable[[Any, TargetColumn], Any]] = {
    ValueKind.INTEGER: _integer,
    ValueKind.DECIMAL: _decimal,
    ValueKind.FLOAT: _float,
    ValueKind.TEXT: _text,
    ValueKind.DATE: _date,
    ValueKind.DATETIME: _datetime,
    ValueKind.TIME: _time,
    ValueKind.BOOLEAN: _boolean,
    ValueKind.UUID: _uuid,
    ValueKind.JSON: _json,
    ValueKind.OTHER: _text,
}

_TEXT_FAST_PATHS: dict[
    ValueKind, Callable[[TargetColumn, Callable[[Any], Any]], Callable[[Any], Any]]
] = {
    ValueKind.TEXT: _fast_text,
    ValueKind.OTHER: _fast_text,
    ValueKind.INTEGER: _fast_integer,
    ValueKind.DECIMAL: _fast_decimal,
    ValueKind.DATE: _fast_date,
}


# -- problems ----------------------------------------------------------------------------


class Problems:
    """The first MAX_PROBLEMS_LISTED problems of a file, and how many there are in all."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_PROBLEMS_LISTED:
            self.listed.append(message)

    def value(self, row: int, column: str, cell: Any, why: str) -> None:
        self.add(f"row {row}, column {column}: {show(cell)} {why}")

    def summary(self) -> list[str]:
        if self.count > len(self.listed):
            return [
                *self.listed,
                f"{self.count:,} problems in all; the first {len(self.listed)} are listed",
            ]
        return list(self.listed)


def show(cell: Any, limit: int = 60) -> str:
    text = cell if isinstance(cell, str) else str(cell)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)
