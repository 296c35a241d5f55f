"""File writers: CSV (RFC 4180), XLSX (xlsxwriter, constant memory) and safe names.

One canonical text form per value type, shared by every CSV path (the PostgreSQL COPY path
in `sources.py` renders the same forms in SQL):

    NULL            empty, unquoted field        empty string   ""
    bool            true / false                 integer        decimal digits
    numeric         exact, plain notation        float          shortest round-trip digits,
                    (no exponent)                               PostgreSQL style (1e+15, NaN,
                                                                Infinity)
    date            2024-01-31                   time           13:45:00[.f]
    timestamp       2024-01-31T13:45:00[.f]      timestamptz    same, in the task's timezone,
                    ([.f]: the fraction of a       with its offset: +08:00
                    second, if any, without      MySQL TIME     [-]HH:MM:SS[.ffffff]
                    trailing zeros)              interval       the server's text (1 year
    json            the database's JSON text                    2 mons 3 days 04:05:06.789)
    bytes           \\x followed by hex          uuid           8-4-4-4-12 lower case
    decimal         its scale kept (199.00)      out of range   the server's text (infinity,
                                                 dates          BC dates, year 10000 on)

A field is quoted when it is empty or holds a comma, a double quote, CR or LF (PostgreSQL's
COPY rule), so NULL and the empty string stay distinguishable. Records end in CRLF. With
`escape_formulas`, text starting with = + - @ gets a leading ' (see `values.py`).

XLSX cells keep types where Excel can hold them without loss: integers below 10**15 and
decimals of up to 15 significant digits as numbers (decimals with their scale as the number
format), anything longer as text; dates and times as Excel dates, those outside Excel's
calendar (before 1900, after 9999-12-31 23:59:59.999) as ISO text; timestamps with a zone as
their wall time in the task's timezone with the offset shown by the number format (Excel has
no zones); booleans as booleans; JSON, bytes, intervals and other values as their text. A
NULL is an empty cell. A cell longer than 32,767 characters fails the export, naming row
and column, rather than being cut short.

The XLSX writer is xlsxwriter, measured against the Rust-backed ones: rustpy-xlsxwriter
0.8.0 wrote the same 200,000 rows 6 to 8.5 times faster (2.3 s against 14.2 s, 20 MB),
but it takes a whole workbook in one call with its list of sheets fixed before the first
row (the split at 1,048,576 rows would need the row count first) and number formats per
column only (a decimal's own scale and a timestamp's fraction need one per cell). It stays
the candidate once it streams sheets or formats cells; the choice is this module's alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import xlsxwriter

from service.domain.model import Encoding
from service.export.values import (
    ServerText,
    escape_formula,
    excel_datetime,
    excel_offset_format,
    offset_text,
)

XLSX_MAX_ROWS = 1_048_576  # rows per sheet, header included
XLSX_MAX_CHARS = 32_767  # characters per cell
_XLSX_INT_LIMIT = 10**15  # integers from here on lose digits as an Excel number


class WriteError(Exception):
    """A value cannot be written as asked; the message names row and column."""


# --- canonical text ---------------------------------------------------------------------


def _float_text(v: float) -> str:
    """Shortest round-trip digits, laid out as PostgreSQL's float8out does."""
    r = repr(v)
    a = abs(v)
    # repr and float8out agree on fixed notation for 1e-4 <= |v| < 1e15 (bar a trailing .0)
    if 1e-4 <= a < 1e15:
        return r[:-2] if r.endswith(".0") else r
    if v != v:
        return "NaN"
    if a == math.inf:
        return "Infinity" if v > 0 else "-Infinity"
    if a == 0:
        return "-0" if r.startswith("-") else "0"
    digits, exp = _digits(Decimal(r))
    sign = "-" if v < 0 else ""
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _digits(d: Decimal) -> tuple[str, int]:
    """Significant digits without trailing zeros and the decimal exponent of the first."""
    t = d.normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    return digits, len(digits) - 1 + int(t.exponent)


def _decimal_text(v: Decimal) -> str:
    return format(v, "f")


def _datetime_text(v: datetime) -> str:
    """A zoned time in its own zone (the source gives it in the task's), with its offset."""
    offset = v.utcoffset()
    if offset is not None:
        return _iso(v.replace(tzinfo=None)) + offset_text(offset)
    return _iso(v)


def _iso(v: datetime | time) -> str:
    """ISO 8601 with the fraction of a second, if any, without trailing zeros."""
    text = v.isoformat()
    return text.rstrip("0") if v.microsecond else text


def _timedelta_text(v: timedelta) -> str:
    """MySQL TIME / interval as [-]HH:MM:SS[.ffffff], hours counting past 24."""
    sign = "-" if v < timedelta(0) else ""
    us = abs(v) // timedelta(microseconds=1)
    seconds, us = divmod(us, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{us:06d}".rstrip("0") if us else text


def _bytes_text(v: bytes | bytearray | memoryview) -> str:
    return "\\x" + bytes(v).hex()


def _json_text(v: object) -> str:
    return json.dumps(v, ensure_ascii=False, default=text_of)


_TEXT: dict[type, Callable[[Any], str]] = {
    str: str,
    ServerText: str,
    bool: lambda b: "true" if b else "false",
    int: int.__str__,
    float: _float_text,
    Decimal: _decimal_text,
    datetime: _datetime_text,
    date: date.isoformat,
    time: _iso,
    timedelta: _timedelta_text,
    bytes: _bytes_text,
    bytearray: _bytes_text,
    memoryview: _bytes_text,
    dict: _json_text,
    list: _json_text,
    tuple: _json_text,
    uuid.UUID: str,
}


def text_of(v: object) -> str:
    """The canonical text of a non-NULL value."""
    f = _TEXT.get(type(v))
    if f is not None:
        return f(v)
    for base, g in _TEXT.items():  # subclasses: IntEnum, str-based enums, ...
        if isinstance(v, base):
            return g(v)
    return str(v)


# --- CSV --------------------------------------------------------------------------------

_NEEDS_QUOTES = re.compile(r'[,"\r\n]').search


def _csv_line(cells: Sequence[str | None]) -> str:
    """One record by hand: used where the csv module cannot say NULL and '' apart."""
    out = []
    single = len(cells) == 1
    for c in cells:
        if c is None:
            out.append("")
        elif c == "" or _NEEDS_QUOTES(c) or (single and c == "\\."):
            out.append('"' + c.replace('"', '""') + '"')
        else:
            out.append(c)
    return ",".join(out) + "\r\n"


def codec_of(encoding: Encoding) -> str:
    return "gbk" if encoding is Encoding.GBK else "utf-8"


def encoding_label(encoding: Encoding) -> str:
    return "GBK" if encoding is Encoding.GBK else "UTF-8"


class CsvWriter:
    """Writes one CSV document to a binary stream, a batch of rows at a time.

    The byte-order mark comes with `Encoding.UTF8_BOM`, or with `bom` (the service-wide
    `export.csv_bom`) on UTF-8; `escape_formulas` makes text a spreadsheet would run inert."""

    def __init__(
        self,
        out: IO[bytes],
        encoding: Encoding = Encoding.UTF8,
        *,
        bom: bool = False,
        escape_formulas: bool = False,
    ) -> None:
        self._out = out
        self._encoding = encoding
        self._codec = codec_of(encoding)
        self._escape = escape_formulas
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self._single = False
        self.columns: tuple[str, ...] = ()
        self.rows = 0
        self.bytes = 0
        if encoding is Encoding.UTF8_BOM or (bom and encoding is Encoding.UTF8):
            self._emit(b"\xef\xbb\xbf")

    def header(self, names: Sequence[str]) -> None:
        self.columns = tuple(names)
        self._single = len(names) == 1
        shown = [escape_formula(n) for n in names] if self._escape else names
        text = _csv_line(shown)
        try:
            self._emit(text.encode(self._codec))
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start]
            raise WriteError(
                f"A column name has {bad!r} that {encoding_label(self._encoding)} cannot "
                "encode: choose UTF-8 or rename the column in the query."
            ) from None

    def write_rows(self, rows: Sequence[Sequence[object]]) -> None:
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        writerow = self._csv.writerow
        text = _TEXT
        single = self._single
        escape = self._escape
        for row in rows:
            cells = [
                None if v is None else v if type(v) is str else text.get(type(v), text_of)(v)
                for v in row
            ]
            if escape:  # plain str only: numbers, dates and server-rendered text are safe
                cells = [
                    escape_formula(c) if type(v) is str else c  # type: ignore[arg-type]
                    for c, v in zip(cells, row, strict=True)
                ]
            if single or "" in cells:
                buf.write(_csv_line(cells))
            else:
                writerow(cells)
        try:
            data = buf.getvalue().encode(self._codec)
        except UnicodeEncodeError:
            raise self._encode_error(rows) from None
        self._emit(data)
        self.rows += len(rows)

    def write_raw(self, data: bytes, rows: int = 0) -> None:
        """Bytes already in canonical CSV form (PostgreSQL COPY output)."""
        self._emit(data)
        self.rows += rows

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes += len(data)

    def _encode_error(self, rows: Sequence[Sequence[object]]) -> WriteError:
        for i, row in enumerate(rows):
            for name, v in zip(self.columns, row, strict=False):
                if v is None:
                    continue
                cell = text_of(v)
                try:
                    cell.encode(self._codec)
                except UnicodeEncodeError as exc:
                    return WriteError(
                        f"Column `{name}` has {exc.object[exc.start]!r} in row "
                        f"{self.rows + i + 1:,} that {encoding_label(self._encoding)} cannot "
                        "encode: choose UTF-8 or remove the character."
                    )
        return WriteError(f"The data cannot be encoded as {encoding_label(self._encoding)}.")


# --- XLSX -------------------------------------------------------------------------------

_SHEET_BAD = re.compile(r"[\[\]:*?/\\\x00-\x1f]")


class XlsxBook:
    """A workbook written with constant memory: rows go to disk as they come."""

    def __init__(self, path: Path, *, max_rows: int = XLSX_MAX_ROWS) -> None:
        if max_rows < 2:
            raise ValueError("a sheet needs room for its header and one row")
        self._wb = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "tmpdir": str(path.parent),
            },
        )
        self.max_rows = max_rows
        self._names: set[str] = set()
        self.bold = self._wb.add_format({"bold": True})
        self._formats: dict[str, Any] = {}

    def fmt(self, num_format: str) -> Any:
        f = self._formats.get(num_format)
        if f is None:
            f = self._formats[num_format] = self._wb.add_format({"num_format": num_format})
        return f

    def sheet_name(self, base: str, part: int = 1) -> str:
        """A unique, valid sheet name; parts after the first are `base (2)`, `base (3)`..."""
        clean = _SHEET_BAD.sub("_", base).strip("'") or "sheet"
        suffix = f" ({part})" if part > 1 else ""
        n = 1
        while True:
            extra = suffix if n == 1 else f"{suffix}~{n}"
            name = clean[: 31 - len(extra)] + extra
            if name.lower() not in self._names and name.lower() != "history":
                self._names.add(name.lower())
                return name
            n += 1

    def add_worksheet(self, name: str) -> Any:
        return self._wb.add_worksheet(name)

    def table(self, name: str, columns: Sequence[str]) -> XlsxTable:
        return XlsxTable(self, name, columns)

    def close(self) -> None:
        self._wb.close()


class XlsxTable:
    """One result on one or more sheets, split where a sheet is full."""

    def __init__(self, book: XlsxBook, name: str, columns: Sequence[str]) -> None:
        self.book = book
        self.name = name
        self.columns = tuple(columns)
        self.rows = 0
        self._part = 0
        self._ws: Any = None
        self._next_row = 0
        f = book.fmt
        self._date = f("yyyy-mm-dd")
        self._datetime_formats = {
            base: f(base) for base in ("yyyy-mm-dd hh:mm:ss", "yyyy-mm-dd hh:mm:ss.000")
        }
        self._time = f("hh:mm:ss")
        self._duration = f("[h]:mm:ss")
        self._decimals: dict[int, Any] = {}
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._part += 1
        ws = self.book.add_worksheet(self.book.sheet_name(self.name, self._part))
        for c, name in enumerate(self.columns):
            ws.write_string(0, c, name, self.book.bold)
            ws.set_column(c, c, min(max(len(name) + 2, 10), 60))
        ws.freeze_panes(1, 0)
        self._ws = ws
        self._next_row = 1

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        limit = self.book.max_rows
        for row in rows:
            if self._next_row >= limit:
                self._new_sheet()
            r = self._next_row
            ws = self._ws
            for c, v in enumerate(row):
                if v is None:
                    continue
                t = type(v)
                if t is str:
                    if len(v) > XLSX_MAX_CHARS:
                        raise self._too_long(c, len(v))
                    ws.write_string(r, c, v)
                elif t is int:
                    if -_XLSX_INT_LIMIT < v < _XLSX_INT_LIMIT:
                        ws.write_number(r, c, v)
                    else:
                        ws.write_string(r, c, str(v))
                else:
                    self._write_other(ws, r, c, v)
            self._next_row = r + 1
            self.rows += 1

    def _write_other(self, ws: Any, r: int, c: int, v: Any) -> None:
        if isinstance(v, bool):
            ws.write_boolean(r, c, v)
        elif isinstance(v, float):
            if math.isfinite(v):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, _float_text(v))
        elif isinstance(v, Decimal):
            self._write_decimal(ws, r, c, v)
        elif isinstance(v, datetime):
            wall = excel_datetime(v)
            if wall is None:  # outside Excel's calendar
                ws.write_string(r, c, _datetime_text(v))
            else:
                base = "yyyy-mm-dd hh:mm:ss.000" if v.microsecond else "yyyy-mm-dd hh:mm:ss"
                fmt = self._zoned_format(base, v) if v.tzinfo else self._datetime_formats[base]
                ws.write_datetime(r, c, wall, fmt)
        elif isinstance(v, date):
            if excel_datetime(v) is None:
                ws.write_string(r, c, v.isoformat())
            else:
                ws.write_datetime(r, c, v, self._date)
        elif isinstance(v, time):
            if v.tzinfo is None:
                ws.write_datetime(r, c, v, self._time)
            else:
                ws.write_string(r, c, v.isoformat())
        elif isinstance(v, timedelta):
            if timedelta(0) <= v < timedelta(days=10_000):
                ws.write_datetime(r, c, v, self._duration)
            else:
                ws.write_string(r, c, _timedelta_text(v))
        elif isinstance(v, int):  # int subclasses
            self._write_int_like(ws, r, c, int(v))
        else:
            text = text_of(v)
            if len(text) > XLSX_MAX_CHARS:
                raise self._too_long(c, len(text))
            ws.write_string(r, c, text)

    def _zoned_format(self, base: str, v: datetime) -> Any:
        return self.book.fmt(excel_offset_format(base, v))

    def _write_int_like(self, ws: Any, r: int, c: int, v: int) -> None:
        if -_XLSX_INT_LIMIT < v < _XLSX_INT_LIMIT:
            ws.write_number(r, c, v)
        else:
            ws.write_string(r, c, str(v))

    def _write_decimal(self, ws: Any, r: int, c: int, v: Decimal) -> None:
        t = v.as_tuple()
        exp = t.exponent
        # A number only when a double keeps every digit (15 significant) and the scale.
        if isinstance(exp, int) and len(t.digits) <= 15 and -300 < exp < 300:
            scale = max(-exp, 0)
            f = self._decimals.get(scale)
            if f is None:
                f = self._decimals[scale] = self.book.fmt("0." + "0" * scale if scale else "0")
            ws.write_number(r, c, float(v), f)
        else:
            ws.write_string(r, c, _decimal_text(v))

    def _too_long(self, c: int, n: int) -> WriteError:
        return WriteError(
            f"Column `{self.columns[c]}` has {n:,} characters in row {self.rows + 1:,}; an Excel "
            f"cell holds at most {XLSX_MAX_CHARS:,}: choose CSV or leave the column out."
        )


# --- names ------------------------------------------------------------------------------

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+')
_SPACES = re.compile(r"\s+")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def safe_filename(name: str, *, max_len: int = 120) -> str:
    """A file name that every OS accepts: no separators or reserved names, bounded length."""
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE.sub("_", name)
    name = _SPACES.sub("_", name).strip(" ._")
    if _RESERVED.match(name):
        name = "_" + name
    if len(name.encode("utf-8")) > max_len:
        name = name.encode("utf-8")[:max_len].decode("utf-8", "ignore").rstrip(" ._")
    return name or "export"
