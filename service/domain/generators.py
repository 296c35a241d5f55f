"""Test-data generators (CONTRACT §12): what each column of a generated row holds.

Pure: the live columns come in as `ColumnInfo` and the values a `ref` picks from as plain
tuples, both read by an adapter; nothing here touches a database.

Reproducible by construction: every column draws from random streams of its own, derived
from the task's seed and the column's name, so the same seed gives the same rows, and
adding, removing or changing one column leaves the values of the others as they were. A
column's NULLs come from a stream apart from its values, so changing `null_ratio` does not
shift the values either. Rows come in batches, each column filling a list, so memory
stays flat whatever the row count.
"""

from __future__ import annotations

import enum
import hashlib
import math
import random
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from faker import Faker

from woxqaq.generator_rules import KINDS, PARAMS, ColumnGenerator

T = TypeVar("T")

# Faker makes some tens of thousands of values a second: too slow for 100,000 rows a second.
# The first FAKER_POOL rows take Faker's values one by one; later rows pick among those.
FAKER_POOL = 10_000
FAKER_DEFAULT_LOCALE = "en_US"
# Faker attributes that are not value providers, or whose values are files or bulk bytes.
_NOT_PROVIDER_NAMES = """
    seed seed_instance seed_locale add_provider get_providers provider format parse
    get_formatter set_formatter set_arguments get_arguments del_arguments random unique optional
    locales weights factories items binary zip tar image json_bytes xml dsv csv tsv psv
    fixed_width json enum pystruct pydict pyiterable pylist pyset pytuple pyobject
"""
_FAKER_NOT_PROVIDERS = frozenset(_NOT_PROVIDER_NAMES.split())
TEXT_ALPHABET = string.ascii_letters + string.digits
MAX_CHOICE_VALUES = 10_000
MAX_PARAM_CHARS = 100_000


class ColumnType(enum.Enum):
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    UUID = "uuid"
    OTHER = "other"  # JSON, binary, arrays…: only text the database itself converts


@dataclass(frozen=True)
class ColumnInfo:
    """A table column as the live database describes it."""

    name: str
    type: ColumnType
    type_name: str  # the database's own spelling, for messages: "varchar(20)"
    nullable: bool = True
    unique: bool = False  # primary key or a single-column unique constraint or index
    has_default: bool = False  # a server default or generated value: may be left out
    autoincrement: bool = False
    computed: bool = False  # a generated column: never written
    length: int | None = None  # characters, for text
    precision: int | None = None  # digits, for decimals
    scale: int | None = None
    int_min: int | None = None  # the integer type's range
    int_max: int | None = None
    timezone: bool = False  # a timestamp with time zone
    enum_values: tuple[str, ...] = ()
    ref: tuple[str, str] | None = None  # a single-column foreign key: (table, column)
    max_existing: int | None = None  # a unique integer column: its largest value so far


@dataclass(frozen=True)
class PlannedColumn:
    generator: ColumnGenerator
    proposed: bool  # chosen by the service for a column the request left out


@dataclass(frozen=True)
class Plan:
    """The resolved generators of a table, in table order; `left_out` get their default."""

    columns: tuple[PlannedColumn, ...]
    left_out: tuple[str, ...]

    @property
    def generators(self) -> tuple[ColumnGenerator, ...]:
        return tuple(p.generator for p in self.columns)

    def refs(self) -> set[tuple[str, str]]:
        """The (table, column) pairs whose values `ref` generators pick from."""
        return {ref_target(p.generator) for p in self.columns if p.generator.kind == "ref"}

    def describe(self) -> str:
        lines = [
            p.generator.describe() + (" (proposed)" if p.proposed else "") for p in self.columns
        ]
        lines += [f"{name}: left to the database (default or NULL)" for name in self.left_out]
        return "\n".join(lines)


class Unfit(Exception):
    """A generator that cannot fill its column; the message says why and what to do."""


class _Values(Protocol):
    def take(self, n: int) -> list[Any]: ...


# -- planning: named generators checked by name, the rest proposed -----------------------


def plan(
    columns: Sequence[ColumnInfo],
    requested: Sequence[ColumnGenerator],
    today: date,
) -> tuple[Plan, list[str]]:
    """Match requested generators to the table's columns and propose the missing ones.

    Problems here are about names and shapes (unknown columns or kinds, duplicates, a NOT
    NULL column nobody can fill); whether values fit is `compile_rows`' business.
    """
    problems: list[str] = []
    by_name = {c.name: c for c in columns}
    named: dict[str, ColumnGenerator] = {}
    for req in requested:
        problem = _shape_problem(req, by_name, named)
        if problem:
            problems.append(problem)
        else:
            named[req.column] = req
    planned: list[PlannedColumn] = []
    left_out: list[str] = []
    for col in columns:
        gen = named.get(col.name)
        if gen is not None and gen.kind:
            planned.append(PlannedColumn(gen, proposed=False))
            continue
        null_ratio = gen.null_ratio if gen is not None else 0.0
        if gen is None and (col.computed or col.autoincrement or col.has_default):
            left_out.append(col.name)
            continue
        candidates = proposals(col, today, null_ratio)
        if candidates:
            planned.append(PlannedColumn(candidates[0], proposed=True))
        elif col.nullable:
            left_out.append(col.name)
        else:
            problems.append(
                f"column `{col.name}` ({col.type_name}) is NOT NULL without a default and no "
                "generator fits its type: name one, e.g. `constant value=…`"
            )
    if not planned and not problems:
        problems.append("no column to generate: name at least one column's generator")
    return Plan(tuple(planned), tuple(left_out)), problems


def _shape_problem(
    gen: ColumnGenerator, by_name: Mapping[str, ColumnInfo], named: Mapping[str, object]
) -> str | None:
    where = f"column `{gen.column}`"
    if not gen.column.strip():
        return "a generator has no column name: say which column it fills"
    col = by_name.get(gen.column)
    if col is None:
        return f"{where} is not in the table; its columns are: {', '.join(by_name)}"
    if gen.column in named:
        return f"{where} has two generators: keep one"
    if col.computed:
        return f"{where} is computed by the database and cannot be written: leave it out"
    if gen.kind not in KINDS and gen.kind:  # no kind: the proposed one, e.g. with a null_ratio
        return f"{where}: kind {gen.kind!r} is not known; use one of: {', '.join(KINDS)}"
    unknown = sorted(set(gen.params) - set(PARAMS.get(gen.kind, ())))
    if unknown:
        allowed = ", ".join(PARAMS[gen.kind]) or "none"
        return f"{where}: {gen.kind} takes no {', '.join(unknown)} (its parameters: {allowed})"
    if any(len(v) > MAX_PARAM_CHARS for v in gen.params.values()):
        return f"{where}: a parameter is longer than {MAX_PARAM_CHARS:,} characters"
    if not (0.0 <= gen.null_ratio <= 1.0) or math.isnan(gen.null_ratio):
        return f"{where}: null_ratio {gen.null_ratio} is not between 0 and 1"
    if gen.null_ratio > 0 and not col.nullable:
        return f"{where} is NOT NULL: it cannot take a null_ratio of {gen.null_ratio:g}"
    return None


_FAKER_BY_NAME = (  # (name contains, provider): first match wins, so specific names first
    ("email", "email"),
    ("mail", "email"),
    ("phone", "phone_number"),
    ("mobile", "phone_number"),
    ("first_name", "first_name"),
    ("firstname", "first_name"),
    ("last_name", "last_name"),
    ("lastname", "last_name"),
    ("username", "user_name"),
    ("user_name", "user_name"),
    ("login", "user_name"),
    ("company", "company"),
    ("address", "address"),
    ("street", "street_address"),
    ("city", "city"),
    ("country", "country"),
    ("postcode", "postcode"),
    ("zip", "postcode"),
    ("url", "url"),
    ("website", "url"),
    ("ip", "ipv4"),
    ("job", "job"),
    ("title", "sentence"),
    ("description", "sentence"),
    ("comment", "sentence"),
    ("note", "sentence"),
    ("name", "name"),
)


def proposals(col: ColumnInfo, today: date, null_ratio: float = 0.0) -> list[ColumnGenerator]:
    """Generators that suit a column by its type and name, most fitting first.

    The first that passes the checks is used (a faker address too long for a varchar(20)
    falls back to text), so a proposal never fails a pre-check its fallback would pass.
    """
    name = col.name.lower()
    out: list[ColumnGenerator] = []

    def add(kind: str, **params: str) -> None:
        out.append(ColumnGenerator(col.name, kind, params, null_ratio))

    if col.ref is not None:  # any other value could break the foreign key: ref or nothing
        add("ref", table=col.ref[0], column=col.ref[1])
        return out
    if col.unique:
        if col.type is ColumnType.INTEGER or col.type is ColumnType.DECIMAL:
            add("sequence", start=str((col.max_existing or 0) + 1))
        elif col.type is ColumnType.UUID or col.type is ColumnType.TEXT:
            add("uuid")
            add("sequence", start=str((col.max_existing or 0) + 1))
        return out
    year_ago = (today - timedelta(days=365)).isoformat()
    if col.type is ColumnType.TEXT and col.enum_values:
        add("choice", values=",".join(col.enum_values))
    elif col.type is ColumnType.TEXT:
        for part, provider in _FAKER_BY_NAME:
            if _name_has(name, part):
                add("faker", provider=provider)
                break
        add("text", min_len=str(min(8, col.length or 8)), max_len=str(min(16, col.length or 16)))
    elif col.type is ColumnType.TIMESTAMP:
        add("timestamp", start=f"{year_ago}T00:00:00", end=f"{today.isoformat()}T00:00:00")
    elif col.type is ColumnType.DATE:
        if "birth" in name:
            add("date", start=f"{today.year - 70}-01-01", end=f"{today.year - 18}-12-31")
        else:
            add("date", start=year_ago, end=today.isoformat())
    elif col.type is ColumnType.BOOLEAN:
        add("choice", values="true,false")
    elif col.type is ColumnType.INTEGER:
        if _name_has(name, "age"):
            add("int", min="18", max="80")
        add("int", min=str(max(col.int_min or 0, 0)), max=str(min(col.int_max or 1000, 1000)))
    elif col.type is ColumnType.DECIMAL or col.type is ColumnType.FLOAT:
        scale = col.scale if col.scale is not None else 2
        top = Decimal(1000)
        if col.precision is not None:  # the largest value the column holds, if below 1000
            top = min(top, Decimal(10) ** (col.precision - scale) - Decimal(1).scaleb(-scale))
        add("decimal", min="0", max=str(top), scale=str(scale))
    elif col.type is ColumnType.UUID:
        add("uuid")
    return out


def _name_has(name: str, part: str) -> bool:
    """`part` as a word of a snake_case or plain column name: `ip` in `client_ip`, not `zip`."""
    words = name.replace("-", "_").split("_")
    return part in words or (len(part) > 3 and part in name) or name == part


# -- compiling: generators checked against their columns, then run -----------------------


def compile_rows(
    columns: Sequence[ColumnInfo],
    generation: Plan,
    *,
    rows: int,
    seed: int,
    refs: Mapping[tuple[str, str], Sequence[Any]],
    today: date,
) -> tuple[RowSource | None, Plan, list[str]]:
    """Check every generator against its live column and build the row source.

    A proposed generator that does not fit is replaced by the next proposal for its column;
    a requested one that does not fit is a problem naming the column. Returns the row source
    (None when there are problems), the plan as finally used, and the problems.
    """
    by_name = {c.name: c for c in columns}
    problems: list[str] = []
    used: list[PlannedColumn] = []
    streams: list[_Values] = []
    left_out = list(generation.left_out)
    for planned in generation.columns:
        col = by_name[planned.generator.column]
        candidates = [planned.generator]
        if planned.proposed:
            candidates = proposals(col, today, planned.generator.null_ratio)
        last_error = ""
        for gen in candidates:
            try:
                streams.append(_build(gen, col, rows=rows, seed=seed, refs=refs))
            except Unfit as exc:
                last_error = f"column `{col.name}`: {exc}"
                continue
            used.append(PlannedColumn(gen, planned.proposed))
            last_error = ""
            break
        if last_error and planned.proposed and col.nullable:
            left_out.append(col.name)  # nothing proposed fits: NULL is a fine test value
        elif last_error:
            problems.append(last_error)
    final = Plan(tuple(used), tuple(left_out))
    if problems:
        return None, final, problems
    return RowSource(final, streams, seed), final, []


class RowSource:
    """The rows of a plan, batch after batch, the same ones for the same seed."""

    def __init__(self, generation: Plan, streams: Sequence[_Values], seed: int) -> None:
        self.columns = tuple(p.generator.column for p in generation.columns)
        self._streams = list(streams)
        self._nulls = [
            (random.Random(stream_seed(seed, p.generator.column, "nulls")), p.generator.null_ratio)
            for p in generation.columns
        ]

    def take(self, n: int) -> list[tuple[Any, ...]]:
        """The next `n` rows."""
        cols = []
        for values, (rng, ratio) in zip(self._streams, self._nulls, strict=True):
            batch = values.take(n)
            if ratio > 0:
                r = rng.random
                batch = [None if r() < ratio else v for v in batch]
            cols.append(batch)
        return list(zip(*cols, strict=True))

    def batches(self, total: int, size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
        done = 0
        while done < total:
            n = min(size, total - done)
            yield self.take(n)
            done += n


def stream_seed(seed: int, column: str, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{column}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def render(value: Any) -> str | None:
    """A value as the preview shows it (None is NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def ref_target(gen: ColumnGenerator) -> tuple[str, str]:
    return gen.params.get("table", "").strip(), gen.params.get("column", "").strip()


# -- the kinds -----------------------------------------------------------------------------


def _build(
    gen: ColumnGenerator,
    col: ColumnInfo,
    *,
    rows: int,
    seed: int,
    refs: Mapping[tuple[str, str], Sequence[Any]],
) -> _Values:
    rng = random.Random(stream_seed(seed, gen.column, "values"))
    p = gen.params
    kind = gen.kind
    if col.enum_values and kind not in ("choice", "constant", "ref"):
        raise Unfit(
            f"{col.type_name} takes only its own values: use choice or constant with some of "
            f"{', '.join(col.enum_values[:10])}"
        )
    if kind == "sequence":
        return _sequence(p, col, rows)
    if kind == "int":
        _check_type(
            col, "int", ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.FLOAT, ColumnType.TEXT
        )
        lo, hi = _int(p, "min", 1), _int(p, "max", 1000)
        _check_order(lo, hi, "min", "max")
        _check_fits(lo, col, "min")
        _check_fits(hi, col, "max")
        return _RangeDraw(lo, hi, rng, col, rows, _number_for(col))
    if kind == "decimal":
        return _decimal(p, col, rng, rows)
    if kind in ("date", "timestamp"):
        return _instant(kind, p, col, rng, rows)
    if kind == "text":
        return _text(p, col, rng)
    if kind == "uuid":
        if col.type is ColumnType.TEXT and col.length is not None and col.length < 36:
            raise Unfit(f"uuids have 36 characters; {col.type_name} holds {col.length}")
        _check_type(col, "uuid", ColumnType.UUID, ColumnType.TEXT)
        return _Uuid(rng)
    if kind == "constant":
        if "value" not in p:
            raise Unfit("constant needs value=…")
        value = coerce(p["value"], col)
        if col.unique and rows > 1:
            raise Unfit("the column is unique and a constant repeats: use sequence or uuid")
        return _Constant(value)
    if kind == "choice":
        return _choice(p, col, rng, rows)
    if kind == "faker":
        return _faker(p, col, rows, stream_seed(seed, gen.column, "faker"), rng)
    return _ref(p, col, rng, rows, refs)


class _Constant:
    def __init__(self, value: Any) -> None:
        self.value = value

    def take(self, n: int) -> list[Any]:
        return [self.value] * n


class _Uuid:
    """Random version-4 UUIDs as text, as `str(uuid.UUID(int=bits, version=4))` spells them,
    without building UUID objects (five times faster)."""

    def __init__(self, rng: random.Random) -> None:
        self.bits = rng.getrandbits

    def take(self, n: int) -> list[Any]:
        bits, keep, set_ = self.bits, _UUID_KEEP, _UUID_SET
        out = []
        for _ in range(n):
            h = f"{(bits(128) & keep) | set_:032x}"
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        return out


# The version (4) and variant (RFC 4122) bits, as uuid.UUID(version=4) sets them.
_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


class _Sequence:
    def __init__(self, start: int, step: int, convert: Callable[[int], Any]) -> None:
        self.next, self.step, self.convert = start, step, convert

    def take(self, n: int) -> list[Any]:
        values = range(self.next, self.next + n * self.step, self.step)
        self.next += n * self.step
        return [self.convert(v) for v in values]


def _sequence(p: Mapping[str, str], col: ColumnInfo, rows: int) -> _Values:
    start, step = _int(p, "start", 1), _int(p, "step", 1)
    if step == 0:
        raise Unfit("step 0 repeats the start value: give a step other than 0")
    _check_type(col, "sequence", ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.TEXT)
    last = start + step * (max(rows, 1) - 1)
    convert: Callable[[int], Any] = str if col.type is ColumnType.TEXT else int
    _check_fits(convert(start), col, "the first value")
    _check_fits(convert(last), col, f"the last value ({last})")
    return _Sequence(start, step, convert)


class _RangeDraw:
    """Uniform integers in [lo, hi] mapped to the column's values.

    A unique column gets them without repeats: an affine permutation of the range
    (x -> a·x + b mod span with gcd(a, span) = 1) visits each value once, with no memory.
    """

    def __init__(
        self,
        lo: int,
        hi: int,
        rng: random.Random,
        col: ColumnInfo,
        rows: int,
        convert: Callable[[int], Any] | None,
    ) -> None:
        """`convert` maps each drawn integer to the column's value (None: the integer)."""
        self.lo, self.span, self.convert = lo, hi - lo + 1, convert
        self.rng = rng
        self.unique = col.unique
        self.index = 0
        if col.unique:
            if self.span < rows:
                raise Unfit(
                    f"the column is unique and this range has {self.span:,} values for "
                    f"{rows:,} rows: widen the range, or use sequence or uuid"
                )
            self.b = rng.randrange(self.span)
            self.a = rng.randrange(1, self.span) if self.span > 1 else 1
            while math.gcd(self.a, self.span) != 1:
                self.a += 1

    def take(self, n: int) -> list[Any]:
        lo, span = self.lo, self.span
        if self.unique:
            a, b, i = self.a, self.b, self.index
            self.index += n
            raw = [lo + (a * k + b) % span for k in range(i, i + n)]
        elif span <= _FLOAT_EXACT:  # random() is twice as fast as randrange() and exact here
            r = self.rng.random
            raw = [lo + int(r() * span) for _ in range(n)]
        else:
            draw = self.rng.randrange
            raw = [lo + draw(span) for _ in range(n)]
        return raw if self.convert is None else list(map(self.convert, raw))


# Below this span, int(random() * span) is uniform: every product is below span exactly.
_FLOAT_EXACT = 2**52


def _number_for(col: ColumnInfo) -> Callable[[int], Any] | None:
    if col.type is ColumnType.TEXT:
        return str
    if col.type is ColumnType.FLOAT:
        return float
    return None


def _decimal(p: Mapping[str, str], col: ColumnInfo, rng: random.Random, rows: int) -> _Values:
    _check_type(col, "decimal", ColumnType.DECIMAL, ColumnType.FLOAT, ColumnType.TEXT)
    default_scale = col.scale if col.scale is not None else 2
    scale = _int(p, "scale", default_scale)
    if not 0 <= scale <= 30:
        raise Unfit(f"scale {scale} is not between 0 and 30")
    if col.type is ColumnType.DECIMAL and col.scale is not None and scale > col.scale:
        raise Unfit(
            f"scale {scale} has more digits than {col.type_name} keeps ({col.scale}): "
            f"use scale={col.scale}"
        )
    lo, hi = _decimal_param(p, "min", Decimal(0)), _decimal_param(p, "max", Decimal(1000))
    _check_order(lo, hi, "min", "max")
    unit = Decimal(1).scaleb(-scale)
    lo_units = int((lo / unit).to_integral_value(rounding="ROUND_CEILING"))
    hi_units = int((hi / unit).to_integral_value(rounding="ROUND_FLOOR"))
    if lo_units > hi_units:
        raise Unfit(f"no value with {scale} decimal places lies between {lo} and {hi}")
    _check_fits(Decimal(lo_units).scaleb(-scale), col, "min")
    _check_fits(Decimal(hi_units).scaleb(-scale), col, "max")
    convert: Callable[[int], Any]
    if col.type is ColumnType.FLOAT:
        convert = lambda u: float(Decimal(u).scaleb(-scale))  # noqa: E731
    elif col.type is ColumnType.TEXT:
        convert = lambda u: format(Decimal(u).scaleb(-scale), "f")  # noqa: E731
    elif max(abs(lo_units), abs(hi_units)) < 10**27:  # within the context's 28 digits
        unit = Decimal(1).scaleb(-scale)
        convert = lambda u: Decimal(u) * unit  # noqa: E731  (twice as fast as scaleb)
    else:
        convert = lambda u: Decimal(u).scaleb(-scale)  # noqa: E731
    return _RangeDraw(lo_units, hi_units, rng, col, rows, convert)


def _instant(
    kind: str, p: Mapping[str, str], col: ColumnInfo, rng: random.Random, rows: int
) -> _Values:
    if kind == "date":
        _check_type(col, "date", ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.TEXT)
        start = _date_param(p, "start", date(2020, 1, 1))
        end = _date_param(p, "end", date(2025, 12, 31))
        _check_order(start, end, "start", "end")
        as_value: Callable[[date], Any] = _date_for(col)
        _check_fits(as_value(end), col, "end")
        return _RangeDraw(
            start.toordinal(),
            end.toordinal(),
            rng,
            col,
            rows,
            lambda d: as_value(date.fromordinal(d)),
        )
    _check_type(col, "timestamp", ColumnType.TIMESTAMP, ColumnType.TEXT)
    t0 = _timestamp_param(p, "start", datetime(2020, 1, 1))
    t1 = _timestamp_param(p, "end", datetime(2025, 12, 31, 23, 59, 59))
    _check_order(t0, t1, "start", "end")
    epoch = datetime(1970, 1, 1)
    as_ts = _timestamp_for(col)
    _check_fits(as_ts(t1), col, "end")
    convert: Callable[[int], Any]
    if col.type is ColumnType.TIMESTAMP:  # one addition a value: the epoch carries the zone
        zoned_epoch = as_ts(epoch)
        convert = lambda s: zoned_epoch + timedelta(seconds=s)  # noqa: E731
    else:
        convert = lambda s: as_ts(epoch + timedelta(seconds=s))  # noqa: E731
    return _RangeDraw(
        int((t0 - epoch).total_seconds()),
        int((t1 - epoch).total_seconds()),
        rng,
        col,
        rows,
        convert,
    )


def _date_for(col: ColumnInfo) -> Callable[[date], Any]:
    if col.type is ColumnType.TIMESTAMP:
        tz = UTC if col.timezone else None
        return lambda d: datetime(d.year, d.month, d.day, tzinfo=tz)
    if col.type is ColumnType.TEXT:
        return date.isoformat
    return lambda d: d


def _timestamp_for(col: ColumnInfo) -> Callable[[datetime], Any]:
    """Naive UTC in the generator; aware for a column with a time zone, text for text."""
    if col.type is ColumnType.TEXT:
        return lambda t: t.isoformat(sep=" ")
    if col.timezone:
        return lambda t: t.replace(tzinfo=UTC)
    return lambda t: t


class _Text:
    def __init__(self, lo: int, hi: int, rng: random.Random) -> None:
        self.lo, self.hi, self.rng = lo, hi, rng

    def take(self, n: int) -> list[Any]:
        pick, length, lo, hi = self.rng.choices, self.rng.randint, self.lo, self.hi
        return ["".join(pick(TEXT_ALPHABET, k=length(lo, hi))) for _ in range(n)]


def _text(p: Mapping[str, str], col: ColumnInfo, rng: random.Random) -> _Values:
    _check_type(col, "text", ColumnType.TEXT)
    if col.unique:
        raise Unfit("the column is unique and random text may repeat: use uuid or sequence")
    hi_default = min(16, col.length) if col.length else 16
    lo = _int(p, "min_len", min(8, hi_default))
    hi = _int(p, "max_len", max(lo, hi_default))
    if lo < 0:
        raise Unfit(f"min_len {lo} is negative")
    _check_order(lo, hi, "min_len", "max_len")
    if hi > 10_000:
        raise Unfit(f"max_len {hi:,} is over 10,000 characters")
    if col.length is not None and hi > col.length:
        raise Unfit(f"max_len {hi} is longer than {col.type_name} holds ({col.length})")
    return _Text(lo, hi, rng)


class _Pick:
    """One of `values` per row (weighted), or without repeats for a unique column: a
    Fisher–Yates shuffle done lazily, one swap per row."""

    def __init__(
        self,
        values: Sequence[Any],
        rng: random.Random,
        *,
        weights: Sequence[float] | None = None,
        unique: bool = False,
    ) -> None:
        self.values, self.rng, self.unique = list(values), rng, unique
        self.cum = None
        if weights is not None:
            self.cum = list(_accumulate(weights))
        self.index = 0

    def take(self, n: int) -> list[Any]:
        if self.unique:
            v, draw, i = self.values, self.rng.randrange, self.index
            out = []
            for k in range(i, i + n):
                j = k + draw(len(v) - k)
                v[k], v[j] = v[j], v[k]
                out.append(v[k])
            self.index += n
            return out
        return self.rng.choices(self.values, cum_weights=self.cum, k=n)


def _accumulate(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _check_distinct(values: Sequence[Any], col: ColumnInfo, rows: int, what: str) -> None:
    if col.unique and len(set(values)) < rows:
        raise Unfit(
            f"the column is unique and {what} has {len(set(values)):,} distinct values for "
            f"{rows:,} rows: use sequence or uuid, or fewer rows"
        )


def _choice(p: Mapping[str, str], col: ColumnInfo, rng: random.Random, rows: int) -> _Values:
    raw = split_list(p.get("values", ""))
    if not raw:
        raise Unfit("choice needs values=a,b,c")
    if len(raw) > MAX_CHOICE_VALUES:
        raise Unfit(f"{len(raw):,} values given; the limit is {MAX_CHOICE_VALUES:,}")
    values = [coerce(v, col) for v in raw]
    weights: list[float] | None = None
    if p.get("weights", "").strip():
        try:
            weights = [float(w) for w in split_list(p["weights"])]
        except ValueError:
            raise Unfit(f"weights {p['weights']!r} are not all numbers") from None
        if len(weights) != len(values):
            raise Unfit(f"{len(weights)} weights for {len(values)} values: give one per value")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise Unfit("weights must be 0 or more and not all 0")
        if col.unique:
            raise Unfit("the column is unique: weights cannot apply to values drawn once each")
    _check_distinct(values, col, rows, "this choice")
    return _Pick(values, rng, weights=weights, unique=col.unique)


def split_list(text: str) -> list[str]:
    """`a, b,c` -> ['a', 'b', 'c']; a backslash keeps a comma in a value: `1\\,5`."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [] if parts == [""] else parts


class _FakerValues:
    """Faker's values one by one for the first FAKER_POOL rows, then picks among them."""

    def __init__(self, pool: list[Any], rng: random.Random, unique: bool) -> None:
        self.pool, self.rng, self.index = pool, rng, 0
        self.pick = _Pick(pool, rng, unique=True) if unique else None

    def take(self, n: int) -> list[Any]:
        if self.pick is not None:
            return self.pick.take(n)
        first = self.pool[self.index : self.index + n]
        self.index += len(first)
        rest = n - len(first)
        if rest:
            first = first + self.rng.choices(self.pool, k=rest)
        return first


def faker_for(locale: str, seed: int) -> Faker:
    try:
        fake = Faker(locale or FAKER_DEFAULT_LOCALE)
    except AttributeError:
        raise Unfit(f"Faker has no locale {locale!r}: try en_US, zh_CN, ja_JP, de_DE…") from None
    fake.seed_instance(seed)
    return fake


def _faker(
    p: Mapping[str, str], col: ColumnInfo, rows: int, faker_seed: int, rng: random.Random
) -> _Values:
    provider = p.get("provider", "").strip()
    if not provider:
        raise Unfit("faker needs provider=… (e.g. name, email, phone_number, address)")
    locale = p.get("locale", "").strip()
    fake = faker_for(locale, faker_seed)
    make = None
    is_provider = provider.isidentifier() and not provider.startswith("_")
    if is_provider and provider not in _FAKER_NOT_PROVIDERS:
        make = getattr(fake, provider, None)
    if not callable(make):
        raise Unfit(
            f"Faker has no provider {provider!r}"
            + (f" in locale {locale}" if locale else "")
            + ": e.g. name, email, phone_number, address, company, city"
        )
    size = min(max(rows, 1), FAKER_POOL)
    pool: list[Any] = []
    seen: set[Any] = set()
    attempts = 0
    # The whole pool is made here, so every value the rows can hold is checked now.
    while len(pool) < size and attempts < size * 20:
        attempts += 1
        value = _faker_value(make(), col, provider)
        if col.unique:
            if value in seen:
                continue
            seen.add(value)
        pool.append(value)
    if col.unique and len(pool) < rows:
        raise Unfit(
            f"the column is unique and faker {provider} gave {len(pool):,} distinct values for "
            f"{rows:,} rows: use sequence or uuid, or at most {len(pool):,} rows"
        )
    return _FakerValues(pool, rng, col.unique)


def _faker_value(value: Any, col: ColumnInfo, provider: str) -> Any:
    if isinstance(value, str):
        value = coerce(value, col)
    elif isinstance(value, datetime | date | int | float | Decimal):
        if col.type is ColumnType.TEXT:
            value = render(value)
        elif isinstance(value, datetime) and col.type is ColumnType.TIMESTAMP:
            value = _timestamp_for(col)(value.replace(tzinfo=None))
        elif isinstance(value, date) and not isinstance(value, datetime):
            _check_type(col, f"faker {provider}", ColumnType.DATE)
        elif isinstance(value, bool | int | float | Decimal):
            _check_type(
                col,
                f"faker {provider}",
                ColumnType.INTEGER,
                ColumnType.DECIMAL,
                ColumnType.FLOAT,
                ColumnType.BOOLEAN,
            )
        else:
            raise Unfit(
                f"faker {provider} gives {type(value).__name__} values, not {col.type_name}"
            )
    else:
        raise Unfit(f"faker {provider} gives {type(value).__name__} values, not column values")
    problem = fit_problem(value, col)
    if problem:
        raise Unfit(f"faker {provider} gave {render(value)!r}: {problem}")
    return value


def _ref(
    p: Mapping[str, str],
    col: ColumnInfo,
    rng: random.Random,
    rows: int,
    refs: Mapping[tuple[str, str], Sequence[Any]],
) -> _Values:
    target = ref_target(ColumnGenerator(col.name, "ref", p))
    if not all(target):
        raise Unfit("ref needs table=… and column=… of the table whose values it picks")
    values = refs.get(target)
    if values is None:
        raise Unfit(f"{target[0]}.{target[1]} could not be read")
    if not values:
        raise Unfit(f"{target[0]}.{target[1]} has no values to refer to: fill it first")
    for v in values[:1000]:
        problem = fit_problem(v, col)
        if problem:
            raise Unfit(f"{target[0]}.{target[1]} holds {render(v)!r}: {problem}")
    _check_distinct(values, col, rows, f"{target[0]}.{target[1]}")
    return _Pick(values, rng, unique=col.unique)


# -- values and columns ----------------------------------------------------------------------


def coerce(text: str, col: ColumnInfo) -> Any:
    """A rule's literal as the column's value; Unfit says why it cannot be."""
    t = col.type
    try:
        if t is ColumnType.INTEGER:
            value: Any = int(text.strip())
        elif t is ColumnType.DECIMAL:
            value = Decimal(text.strip())
            if not value.is_finite():
                raise ValueError
        elif t is ColumnType.FLOAT:
            value = float(text.strip())
        elif t is ColumnType.DATE:
            value = date.fromisoformat(text.strip())
        elif t is ColumnType.TIMESTAMP:
            value = _timestamp_for(col)(_naive_utc(datetime.fromisoformat(text.strip())))
        elif t is ColumnType.BOOLEAN:
            value = _BOOLEANS[text.strip().lower()]
        elif t is ColumnType.UUID:
            value = str(uuid.UUID(text.strip()))
        else:
            value = text
    except (ValueError, KeyError, InvalidOperation):
        raise Unfit(f"{text!r} is not a {_type_word(col)} value for {col.type_name}") from None
    if col.enum_values and value not in col.enum_values:
        raise Unfit(f"{text!r} is not one of {col.type_name}: {', '.join(col.enum_values)}")
    problem = fit_problem(value, col)
    if problem:
        raise Unfit(f"{text!r}: {problem}")
    return value


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def fit_problem(value: Any, col: ColumnInfo) -> str | None:
    """Why `value` does not fit `col`, or None."""
    if isinstance(value, str) and col.length is not None and len(value) > col.length:
        return f"{len(value)} characters; {col.type_name} holds {col.length}"
    if isinstance(value, int) and not isinstance(value, bool):
        if col.int_min is not None and value < col.int_min:
            return f"below the smallest {col.type_name} ({col.int_min})"
        if col.int_max is not None and value > col.int_max:
            return f"above the largest {col.type_name} ({col.int_max})"
    if isinstance(value, int | Decimal) and col.type is ColumnType.DECIMAL:
        return _decimal_fit_problem(Decimal(value), col)
    return None


def _decimal_fit_problem(d: Decimal, col: ColumnInfo) -> str | None:
    if col.precision is None:
        return None
    scale = col.scale or 0
    if abs(d) < Decimal(10) ** (col.precision - scale) and d != round(d, scale):
        return f"more than {scale} decimal places for {col.type_name}"
    if abs(d) >= Decimal(10) ** (col.precision - scale):
        return f"more than {col.precision - scale} digits before the point for {col.type_name}"
    return None


def _type_word(col: ColumnInfo) -> str:
    return {ColumnType.INTEGER: "whole-number", ColumnType.DECIMAL: "decimal"}.get(
        col.type, col.type.value
    )


def _check_type(col: ColumnInfo, what: str, *types: ColumnType) -> None:
    if col.type not in types:
        words = " or ".join(t.value for t in types)
        raise Unfit(f"{what} fills {words} columns; this one is {col.type_name}")


def _check_fits(value: Any, col: ColumnInfo, what: str) -> None:
    problem = fit_problem(value, col)
    if problem:
        raise Unfit(f"{what} {render(value)}: {problem}")


def _check_order(lo: Any, hi: Any, lo_name: str, hi_name: str) -> None:
    if lo > hi:
        raise Unfit(f"{lo_name} {render(lo)} is after {hi_name} {render(hi)}: swap them")


def _param(p: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    """Parameter `name` parsed, or `default` when it is absent; Unfit says what it should be."""
    text = p.get(name, "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except (ValueError, InvalidOperation):
        raise Unfit(f"{name}={text!r} is not {what}") from None


def _finite_decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(text)
    return value


def _int(p: Mapping[str, str], name: str, default: int) -> int:
    return _param(p, name, default, int, "a whole number")


def _decimal_param(p: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    return _param(p, name, default, _finite_decimal, "a finite number")


def _date_param(p: Mapping[str, str], name: str, default: date) -> date:
    return _param(p, name, default, date.fromisoformat, "an ISO 8601 date such as 2025-03-31")


def _timestamp_param(p: Mapping[str, str], name: str, default: datetime) -> datetime:
    parse = lambda text: _naive_utc(datetime.fromisoformat(text))  # noqa: E731
    return _param(p, name, default, parse, "an ISO 8601 time such as 2025-03-31T09:30:00")


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t
