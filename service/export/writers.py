"""File writers: CSV (RFC 4180), XLSX (streamed SpreadsheetML) and safe names.

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
decimals of up to 15 significant digits, at most 30 places and below 1E+308 as numbers
(decimals with their scale as the number format), any other as text; dates and times as
Excel dates, those outside Excel's calendar (before 1900, after 9999-12-31 23:59:59.999) as
ISO text; timestamps with a zone as their wall time in the task's timezone with the offset
shown by the number format (Excel has no zones); booleans as booleans; JSON, bytes,
intervals and other values as their text. A NULL is an empty cell. A cell longer than 32,767
characters fails the export, naming row and column, rather than being cut short.

The XLSX writer is this module's own: each sheet is one SpreadsheetML part (ECMA-376 part
1, §18) streamed through `zipfile` with deflate, its rows rendered to XML a batch at a time,
column by column, by a formatter per value type (inline strings, `<v>` numbers and serials,
a style per number format). The parts are the minimal set Excel, LibreOffice and openpyxl
open, written as xlsxwriter writes them: `[Content_Types].xml`, `_rels/.rels`,
`xl/workbook.xml` and its rels, `xl/styles.xml`, `xl/worksheets/sheetN.xml` (no theme or
document properties). Text is escaped as xlsxwriter escapes it (control characters as
`_xHHHH_`, a literal `_xHHHH_` as `_x005F_xHHHH_`, `xml:space="preserve"` for edge
whitespace), and is always a string, never a formula or a rich string. A sheet has no
`<dimension>` (optional in §18.3.1.35): its last row is not known until the stream ends.

Why our own: xlsxwriter spends its time in Python calls per cell (an XLSX export through it
took 0.98x a bare xlsxwriter constant_memory loop over the same rows). With this writer,
1,000,000 rows of bench/export_bench.py took 11.3 s against the bare loop's 77.4 s (0.15x;
best of 2 each, on a shared 2-core machine), at 88 MB peak RSS (5,000,000 rows: 54 s against
311 s, 0.17x, the same 88 MB); the file is about a quarter larger (deflate level 1).
The Rust-backed writers do not fit: rustpy-xlsxwriter 0.8.0 takes a whole workbook in one
call with its sheets fixed before the first row and number formats per column only (a
decimal's own scale and a timestamp's fraction need one per cell); rvgsrust-xlsxwriter
0.3.5 streams and formats per cell, but its calls per cell took 2.7 s of CPU for 200,000
bench rows (2.2 s through its `write_rows`, without formats), against 1.4 s for this writer
with every check above; jetxl 0.3.1 writes Arrow tables whole.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import operator
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape as xml_escape

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
# Rows a workbook takes at a time: enough for its column-at-a-time rendering to pay, few
# enough that a batch, its XML and the driver's buffers stay a few MB.
XLSX_BATCH_ROWS = 1000
_XLSX_INT_LIMIT = 10**15  # integers from here on lose digits as an Excel number
_XLSX_MAX_PLACES = 30  # decimal places a number format may show


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

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
# Deflate level 1: the parts are repetitive XML, so it keeps most of level 6's gain (the
# bench's sheets shrink to 16% against 12.5%) at a third of its time.
_ZIP_LEVEL = 1

_HEADER_STYLE = 1  # cellXfs index of the bold header: 0 is Excel's default
_DATE_FORMAT = "yyyy-mm-dd"
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_DATETIME_MS_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
_TIME_FORMAT = "hh:mm:ss"
_DURATION_FORMAT = "[h]:mm:ss"

# Excel's serial numbers: days since 1899-12-31, with the 29th of February 1900 that never
# was (every date from March 1900 on counts one more day than the calendar has).
_EXCEL_DAY_ZERO = date(1899, 12, 31).toordinal()
_UNIX_DAY = 25569.0  # 1970-01-01 as an Excel serial, the phantom day included
_SECONDS_A_DAY = 86400
_UNIX_EPOCH = datetime(1970, 1, 1)
# Serials a column of times may hold without a value-by-value look: a day inside Excel's
# calendar on each side, so rounding of the serial never decides a boundary.
_SERIAL_SAFE_LOW = 62.0
_SERIAL_SAFE_HIGH = 2_958_464.0

# Text a cell holds as written, or what makes it need escaping: XML's & < >, control
# characters (Excel's _xHHHH_ escapes, as xlsxwriter writes them), U+FFFE/U+FFFF, and text
# that reads as such an escape already.
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_").search
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
# Bytes of UTF-8 text that rule out the column-at-a-time path: control characters (NUL is
# the separator there and counted apart) and the lead of U+FFFE/U+FFFF.
_NOT_SPECIAL_BYTES = bytes(b for b in range(256) if b in (0, 9, 10) or b >= 32)
_NONCHARACTERS = (b"\xef\xbf\xbe", b"\xef\xbf\xbf")
_SEPARATOR = "\x00"

_is_value = functools.partial(operator.is_not, None)
_fraction_digits = operator.itemgetter(2)
_split_at_point = operator.methodcaller("partition", ".")
_microsecond = operator.attrgetter("microsecond")
_NoneType = type(None)
_TEXT_TYPES = frozenset({str, ServerText})


def _xml_attr(text: str) -> str:
    return xml_escape(text, {'"': "&quot;"})


def _cell_text(v: str) -> str:
    """Text as an inline string holds it: control characters as Excel's _xHHHH_ escapes
    (a literal `_x0041_` escaped in turn, so it reads back as written), then XML escapes."""
    if _NEEDS_ESCAPE(v) is None:
        return v
    v = _LITERAL_ESCAPE.sub(r"_x005F\1", v)
    v = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", v)
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(ref: str, text: str, style: str = "") -> str:
    """An inline-string cell; `xml:space` keeps leading or trailing whitespace."""
    if text[:1].isspace() or text[-1:].isspace():
        return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
    return f'<c r="{ref}"{style} t="inlineStr"><is><t>{text}</t></is></c>'


def column_letters(index: int) -> str:
    """A zero-based column index as Excel names it: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _date_serial(v: date) -> int:
    days = v.toordinal() - _EXCEL_DAY_ZERO
    return days + 1 if days > 59 else days


def _wall_serial(wall_seconds: float) -> float:
    """Seconds of wall time since 1970-01-01 as an Excel serial; the same arithmetic serves
    the column-at-a-time path, so both write the same digits."""
    serial = wall_seconds / _SECONDS_A_DAY + _UNIX_DAY
    return serial if serial > 60.0 else serial - 1.0


def _wall_seconds(v: datetime) -> float:
    offset = v.utcoffset()
    if offset is None:
        return (v - _UNIX_EPOCH).total_seconds()
    return v.timestamp() + offset.total_seconds()


def _day_fraction(v: time | timedelta) -> float:
    if isinstance(v, time):
        seconds = v.hour * 3600 + v.minute * 60 + v.second
        return (seconds + v.microsecond / 1e6) / _SECONDS_A_DAY
    return v.days + (v.seconds + v.microseconds / 1e6) / _SECONDS_A_DAY


class _Styles:
    """The workbook's cell formats: Excel's default, the bold header, then one per number
    format in the order cells first need them."""

    def __init__(self) -> None:
        self._by_format: dict[str, str] = {}
        self._formats: list[str] = []

    def attr(self, num_format: str) -> str:
        """The ` s="N"` attribute of a cell in `num_format`."""
        a = self._by_format.get(num_format)
        if a is None:
            self._formats.append(num_format)
            a = self._by_format[num_format] = f' s="{_HEADER_STYLE + len(self._formats)}"'
        return a

    def xml(self) -> str:
        """styles.xml: the minimal stylesheet Excel opens (fonts, the two fills it requires,
        a border, the cell formats), each number format a custom one from id 164 on."""
        fmts = "".join(
            f'<numFmt numFmtId="{164 + i}" formatCode="{_xml_attr(f)}"/>'
            for i, f in enumerate(self._formats)
        )
        xfs = "".join(
            f'<xf numFmtId="{164 + i}" fontId="0" fillId="0" borderId="0" xfId="0" '
            'applyNumberFormat="1"/>'
            for i in range(len(self._formats))
        )
        font = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
        return (
            f'{_XML_DECL}<styleSheet xmlns="{_NS_MAIN}">'
            + (f'<numFmts count="{len(self._formats)}">{fmts}</numFmts>' if fmts else "")
            + f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            f'borderId="0"/></cellStyleXfs><cellXfs count="{2 + len(self._formats)}">'
            '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
            f'{xfs}</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
            'builtinId="0"/></cellStyles><dxfs count="0"/><tableStyles count="0" '
            'defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
            "</styleSheet>"
        )


class XlsxBook:
    """A workbook streamed into its zip file: each sheet's rows are rendered to XML and
    deflated as they come, so memory holds one batch whatever the row count."""

    def __init__(self, path: Path, *, max_rows: int = XLSX_MAX_ROWS) -> None:
        if max_rows < 2:
            raise ValueError("a sheet needs room for its header and one row")
        self._zip = zipfile.ZipFile(
            path, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=_ZIP_LEVEL
        )
        self.max_rows = max_rows
        self.styles = _Styles()
        self._names: set[str] = set()
        self._sheets: list[str] = []
        self._part: IO[bytes] | None = None

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

    def table(self, name: str, columns: Sequence[str]) -> XlsxTable:
        return XlsxTable(self, name, columns)

    def start_sheet(self, name: str, head: str) -> None:
        """Open the next sheet's part (closing the one before) with `head`, the XML up to
        and including its first row."""
        self._end_sheet()
        self._sheets.append(name)
        selected = ' tabSelected="1"' if len(self._sheets) == 1 else ""
        member = f"xl/worksheets/sheet{len(self._sheets)}.xml"
        # No ZIP64 fields unless a size needs them: Excel refuses some where none are needed.
        self._part = self._zip.open(member, "w")
        self.write(
            f'{_XML_DECL}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><sheetViews>'
            f'<sheetView{selected} workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
            f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>{head}'
        )

    def write(self, xml: str) -> None:
        assert self._part is not None
        try:
            data = xml.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise WriteError(
                f"A value holds {exc.object[exc.start]!r}, which is not a character UTF-8 "
                "can store: choose CSV or leave the column out."
            ) from None
        try:
            self._part.write(data)
        except RuntimeError:  # zipfile: the part passed 4 GiB without ZIP64 fields
            raise WriteError(
                "A sheet passed 4 GiB of XML, more than one workbook part holds without ZIP64: "
                "choose CSV or leave columns out."
            ) from None

    def _end_sheet(self) -> None:
        if self._part is not None:
            self.write(
                '</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" '
                'header="0.3" footer="0.3"/></worksheet>'
            )
            self._part.close()
            self._part = None

    def close(self) -> None:
        """Finish the last sheet and write the parts that name them all."""
        try:
            if not self._sheets:  # a workbook has at least one sheet
                self.start_sheet("Sheet1", "<sheetData>")
            self._end_sheet()
            self._write_book_parts()
        finally:
            self._zip.close()

    def _write_book_parts(self) -> None:
        z = self._zip
        n = len(self._sheets)
        z.writestr(
            "[Content_Types].xml",
            f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/styles.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SHEET_TYPE}"/>'
                for i in range(1, n + 1)
            )
            + "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}"><Relationship Id="rId1" '
            f'Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_XML_DECL}<Relationships xmlns="{_NS_PKG_REL}">'
            + "".join(
                f'<Relationship Id="rId{i}" Type="{_NS_REL}/worksheet" '
                f'Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, n + 1)
            )
            + f'<Relationship Id="rId{n + 1}" Type="{_NS_REL}/styles" Target="styles.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/workbook.xml",
            f'{_XML_DECL}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><bookViews>'
            '<workbookView xWindow="240" yWindow="15" windowWidth="16095" '
            'windowHeight="9660"/></bookViews><sheets>'
            + "".join(
                f'<sheet name="{_xml_attr(name)}" sheetId="{i}" r:id="rId{i}"/>'
                for i, name in enumerate(self._sheets, 1)
            )
            + '</sheets><calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>',
        )
        z.writestr("xl/styles.xml", self.styles.xml())


def _column_width(name: str) -> str:
    """The header's width in characters (10 to 60), as Excel stores it: whole pixels of
    its 7-pixel digit plus 5 of padding, in 1/256 of a character."""
    chars = min(max(len(name) + 2, 10), 60)
    pixels = int(chars * 7 + 0.5) + 5
    return f"{pixels * 256 // 7 / 256:.16g}"


class XlsxTable:
    """One result on one or more sheets, split where a sheet is full (the header repeated
    on each). Rows are rendered a batch at a time, column by column: a column whose values
    share a type Excel holds as is (text, integers, decimals, times...) takes that type's
    formatter over the whole column; any other column, value by value."""

    def __init__(self, book: XlsxBook, name: str, columns: Sequence[str]) -> None:
        self.book = book
        self.name = name
        self.columns = tuple(columns)
        self.rows = 0
        self._part = 0
        self._next_row = 0
        self._letters = [column_letters(i) for i in range(len(self.columns))]
        self._head = self._sheet_head()
        self._bulk: dict[type, Callable[..., list[str] | None]] = {
            str: self._text_cells,
            ServerText: self._text_cells,
            int: self._int_cells,
            bool: self._bool_cells,
            float: self._float_cells,
            Decimal: self._decimal_cells,
            datetime: self._datetime_cells,
            date: self._date_cells,
        }
        self._new_sheet()

    def _sheet_head(self) -> str:
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{_column_width(n)}" customWidth="1"/>'
            for i, n in enumerate(self.columns, 1)
        )
        header = "".join(
            _inline(f"{letter}1", _cell_text(n), f' s="{_HEADER_STYLE}"')
            for letter, n in zip(self._letters, self.columns, strict=True)
        )
        return (f"<cols>{cols}</cols>" if cols else "") + f'<sheetData><row r="1">{header}</row>'

    def _new_sheet(self) -> None:
        self._part += 1
        self.book.start_sheet(self.book.sheet_name(self.name, self._part), self._head)
        self._next_row = 2

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        limit = self.book.max_rows
        done = 0
        while done < len(rows):
            if self._next_row > limit:
                self._new_sheet()
            room = limit - self._next_row + 1
            batch = rows[done : done + min(room, XLSX_BATCH_ROWS)]
            self.book.write(self._render(batch))
            self._next_row += len(batch)
            self.rows += len(batch)
            done += len(batch)

    # rendering ---------------------------------------------------------------------------

    def _render(self, batch: Sequence[Sequence[Any]]) -> str:
        first = self._next_row
        numbers = list(map(str, range(first, first + len(batch))))
        columns = [
            self._column_cells(c, values, numbers)
            for c, values in enumerate(zip(*batch, strict=True))
        ]
        starts = [f'<row r="{n}">' for n in numbers]
        return "".join(map("".join, zip(starts, *columns, ["</row>"] * len(batch), strict=True)))

    def _column_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str]:
        kinds = set(map(type, values))
        kinds.discard(_NoneType)
        if len(kinds) == 1 or kinds == _TEXT_TYPES:
            bulk = self._bulk.get(next(iter(kinds)))
            if bulk is not None:
                cells = bulk(c, values, numbers)
                if cells is not None:
                    return cells
        letter = self._letters[c]
        return [
            "" if v is None else self._cell(c, f"{letter}{n}", v, i)
            for i, (n, v) in enumerate(zip(numbers, values, strict=True))
        ]

    # per column: None when the column needs the value-by-value path after all

    def _text_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str] | None:
        # A NULL joins in as the text "None", harmless to the checks and never written: the
        # escaped texts then line up with the values.
        texts = list(map(str, values))
        if max(map(len, texts)) > XLSX_MAX_CHARS:
            return None  # the value-by-value path names the row
        joined = _SEPARATOR.join(texts)
        raw = joined.encode("utf-8", "surrogatepass")
        if (
            raw.translate(None, _NOT_SPECIAL_BYTES)
            or raw.count(b"\x00") != len(texts) - 1
            or b"_x" in raw
            or any(nc in raw for nc in _NONCHARACTERS)
        ):
            return None
        if len(_SEPARATOR.join(map(str.strip, texts))) != len(joined):
            return None  # leading or trailing whitespace somewhere
        if "&" in joined or "<" in joined or ">" in joined:
            joined = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        letter = self._letters[c]
        return [
            "" if v is None else f'<c r="{letter}{n}" t="inlineStr"><is><t>{t}</t></is></c>'
            for n, v, t in zip(numbers, values, joined.split(_SEPARATOR), strict=True)
        ]

    def _int_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str] | None:
        ints = list(filter(_is_value, values))
        if min(ints) <= -_XLSX_INT_LIMIT or max(ints) >= _XLSX_INT_LIMIT:
            return None
        letter = self._letters[c]
        return [
            "" if v is None else f'<c r="{letter}{n}"><v>{v}</v></c>'
            for n, v in zip(numbers, values, strict=True)
        ]

    def _bool_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str]:
        letter = self._letters[c]
        return [
            "" if v is None else f'<c r="{letter}{n}" t="b"><v>{v:d}</v></c>'
            for n, v in zip(numbers, values, strict=True)
        ]

    def _float_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str] | None:
        floats = list(filter(_is_value, values))
        if not all(map(math.isfinite, floats)):
            return None
        letter = self._letters[c]
        return [
            "" if v is None else f'<c r="{letter}{n}"><v>{v!r}</v></c>'
            for n, v in zip(numbers, values, strict=True)
        ]

    def _decimal_cells(
        self, c: int, values: tuple[Any, ...], numbers: list[str]
    ) -> list[str] | None:
        texts = list(map(str, filter(_is_value, values)))
        joined = "".join(texts)
        # Plain notation of at most 15 characters: at most 15 digits, so a number; the
        # digits after the point are its scale. Anything else goes value by value.
        if max(map(len, texts)) > 15 or "E" in joined or "N" in joined or "I" in joined:
            return None
        scales = list(map(len, map(_fraction_digits, map(_split_at_point, texts))))
        attr = self.book.styles.attr
        styles = {s: attr(_decimal_format(s)) for s in set(scales)}
        letter = self._letters[c]
        rows = _rows_with_values(numbers, values, len(texts))
        cells = [
            f'<c r="{letter}{n}"{styles[s]}><v>{t}</v></c>'
            for n, t, s in zip(rows, texts, scales, strict=True)
        ]
        return _with_nulls(values, cells)

    def _datetime_cells(
        self, c: int, values: tuple[Any, ...], numbers: list[str]
    ) -> list[str] | None:
        times = list(filter(_is_value, values))
        offsets = set(map(datetime.utcoffset, times))
        if len(offsets) != 1:
            return None  # naive and zoned mixed, or a zone's offset changing
        offset = offsets.pop()
        if offset is None:
            seconds = [
                d.total_seconds() for d in map(operator.sub, times, [_UNIX_EPOCH] * len(times))
            ]
        else:
            shift = offset.total_seconds()
            seconds = [t + shift for t in map(datetime.timestamp, times)]
        serials = [s / _SECONDS_A_DAY + _UNIX_DAY for s in seconds]
        if min(serials) < _SERIAL_SAFE_LOW or max(serials) > _SERIAL_SAFE_HIGH:
            return None
        fractions = list(map(bool, map(_microsecond, times)))
        formats = (_DATETIME_FORMAT, _DATETIME_MS_FORMAT)
        styles = {
            f: self.book.styles.attr(excel_offset_format(formats[f], times[0]))
            for f in set(fractions)
        }
        letter = self._letters[c]
        rows = _rows_with_values(numbers, values, len(times))
        cells = [
            f'<c r="{letter}{n}"{styles[f]}><v>{s!r}</v></c>'
            for n, s, f in zip(rows, serials, fractions, strict=True)
        ]
        return _with_nulls(values, cells)

    def _date_cells(self, c: int, values: tuple[Any, ...], numbers: list[str]) -> list[str] | None:
        days = [d.toordinal() - _EXCEL_DAY_ZERO for d in filter(_is_value, values)]
        if min(days) <= 60:
            return None  # the phantom leap day: value by value
        style = self.book.styles.attr(_DATE_FORMAT)
        letter = self._letters[c]
        rows = _rows_with_values(numbers, values, len(days))
        cells = [
            f'<c r="{letter}{n}"{style}><v>{d + 1}</v></c>' for n, d in zip(rows, days, strict=True)
        ]
        return _with_nulls(values, cells)

    # per value: the reference for every type -------------------------------------------

    def _cell(self, c: int, ref: str, v: Any, i: int) -> str:
        if isinstance(v, str):
            return self._text(c, ref, v, i)
        if isinstance(v, bool):
            return f'<c r="{ref}" t="b"><v>{v:d}</v></c>'
        if isinstance(v, int):
            if -_XLSX_INT_LIMIT < v < _XLSX_INT_LIMIT:
                return f'<c r="{ref}"><v>{int(v)}</v></c>'
            return self._text(c, ref, str(int(v)), i)
        if isinstance(v, float):
            if math.isfinite(v):
                return f'<c r="{ref}"><v>{v!r}</v></c>'
            return self._text(c, ref, _float_text(v), i)
        if isinstance(v, Decimal):
            return self._decimal(c, ref, v, i)
        if isinstance(v, datetime):
            if excel_datetime(v) is None:  # outside Excel's calendar
                return self._text(c, ref, _datetime_text(v), i)
            base = _DATETIME_MS_FORMAT if v.microsecond else _DATETIME_FORMAT
            style = self.book.styles.attr(excel_offset_format(base, v))
            return f'<c r="{ref}"{style}><v>{_wall_serial(_wall_seconds(v))!r}</v></c>'
        if isinstance(v, date):
            if excel_datetime(v) is None:
                return self._text(c, ref, v.isoformat(), i)
            style = self.book.styles.attr(_DATE_FORMAT)
            return f'<c r="{ref}"{style}><v>{_date_serial(v)}</v></c>'
        if isinstance(v, time):
            if v.tzinfo is not None:
                return self._text(c, ref, v.isoformat(), i)
            style = self.book.styles.attr(_TIME_FORMAT)
            return f'<c r="{ref}"{style}><v>{_day_fraction(v)!r}</v></c>'
        if isinstance(v, timedelta):
            if not timedelta(0) <= v < timedelta(days=10_000):
                return self._text(c, ref, _timedelta_text(v), i)
            style = self.book.styles.attr(_DURATION_FORMAT)
            return f'<c r="{ref}"{style}><v>{_day_fraction(v)!r}</v></c>'
        return self._text(c, ref, text_of(v), i)

    def _text(self, c: int, ref: str, text: str, i: int) -> str:
        if len(text) > XLSX_MAX_CHARS:
            raise self._too_long(c, len(text), i)
        return _inline(ref, _cell_text(text))

    def _decimal(self, c: int, ref: str, v: Decimal, i: int) -> str:
        t = v.as_tuple()
        exp = t.exponent
        # A number only when a double keeps every digit (15 significant), its magnitude
        # stays within Excel's (below 1E+308) and its scale within Excel's 30 places.
        if (
            isinstance(exp, int)
            and len(t.digits) <= 15
            and exp >= -_XLSX_MAX_PLACES
            and (v.is_zero() or v.adjusted() < 308)
        ):
            style = self.book.styles.attr(_decimal_format(max(-exp, 0)))
            text = str(v)
            if "E" in text:
                text = repr(float(v))
            return f'<c r="{ref}"{style}><v>{text}</v></c>'
        return self._text(c, ref, _decimal_text(v), i)

    def _too_long(self, c: int, n: int, i: int) -> WriteError:
        return WriteError(
            f"Column `{self.columns[c]}` has {n:,} characters in row {self.rows + i + 1:,}; "
            f"an Excel cell holds at most {XLSX_MAX_CHARS:,}: choose CSV or leave the column "
            "out."
        )


def _rows_with_values(numbers: list[str], values: tuple[Any, ...], count: int) -> list[str]:
    """The row numbers of the `count` non-NULL `values`."""
    if count == len(values):
        return numbers
    return [n for n, v in zip(numbers, values, strict=True) if v is not None]


def _with_nulls(values: tuple[Any, ...], cells: list[str]) -> list[str]:
    """`cells`, rendered for the non-NULL `values`, laid out with empty cells for NULLs."""
    if len(cells) == len(values):
        return cells
    it = iter(cells)
    return ["" if v is None else next(it) for v in values]


def _decimal_format(scale: int) -> str:
    return "0." + "0" * scale if scale else "0"


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
