"""Reading an uploaded file row by row: CSV (RFC 4180; UTF-8 with or without a BOM, or GBK,
both strict) or an XLSX sheet (openpyxl's streaming reader; formulas refused; a zip bomb
stopped by the declared unpacked size). Every byte read passes through `HashingReader`, so
the SHA-256 and the size limit come with reading, not from a second pass.

Why openpyxl's reader and not python-calamine 0.9.1, ten times faster (bench/import_bench.py
--xlsx-only, a 5-column sheet, best of 3, load average about 1.3 on 2 cores):

    rows        reader     rows/s   peak RSS
    100,000     openpyxl   30,400     84 MB
    100,000     calamine  321,300     98 MB
    1,000,000   openpyxl   30,800    161 MB
    1,000,000   calamine  322,700    462 MB

openpyxl's figure grows by about 85 bytes a row (see EXCEL_MAX_ROWS), so it stays near 165 MB
at Excel's last row. calamine holds the whole sheet in memory (462 MB, over the 200 MB an
import may take), and changes what reaches the pre-check: an error cell (#N/A) comes as '' (a
NULL, where openpyxl gives its text, which a number column refuses), every number as a float
(12345678901234567 becomes 1.2345678901234568e16), a date cell as a date, not a datetime (a
text column would read '2030-01-02', not '2030-01-02 00:00:00'), and it cannot see formulas at
all (a scan of the sheet's XML for them costs 1.2 s at 1,000,000 rows as bytes, 10.9 s through
iterparse).
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from service.domain.model import Encoding, ExportType

# A cell of a CSV file may be this long (the csv module's default is 128 KiB).
csv.field_size_limit(64 * 1024 * 1024)

Row = tuple[int, list[Any]]  # (row number in the file, 1-based, header included; cells)


class FileProblem(Exception):
    """The file cannot be read as asked; the message says what to do."""


class HashingReader(io.RawIOBase):
    """Counts and hashes what is read through it; more than `limit` bytes is a FileProblem."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._sha = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self._sha.update(view[:n])
        self.bytes += n
        if self.bytes > self._limit:
            raise FileProblem(
                f"the file is larger than import.max_bytes ({self._limit:,} bytes): split it"
            )
        return n

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def drain(self) -> None:
        """Read (and hash) the rest: the digest is of the whole file."""
        while self.read(1024 * 1024):
            pass


@contextmanager
def open_rows(
    source: HashingReader,
    fmt: ExportType,
    *,
    encoding: Encoding = Encoding.UTF8,
    sheet: str = "",
    work_dir: Path,
    max_unpacked: int,
) -> Iterator[Iterator[Row]]:
    """The file's non-blank rows, header included, as (row number, cells)."""
    if fmt is ExportType.EXCEL:
        with _xlsx_rows(source, sheet, work_dir, max_unpacked) as rows:
            yield rows
    else:
        yield _csv_rows(source, encoding)


def _csv_rows(source: HashingReader, encoding: Encoding) -> Iterator[Row]:
    codec = "gbk" if encoding is Encoding.GBK else "utf-8-sig"  # utf-8-sig: a BOM is optional
    label = "GBK" if encoding is Encoding.GBK else "UTF-8"
    text = io.TextIOWrapper(io.BufferedReader(source, 1024 * 1024), encoding=codec, newline="")
    text._CHUNK_SIZE = 1024 * 1024  # type: ignore[attr-defined]
    reader = csv.reader(text, strict=True)
    number = 0
    try:
        for cells in reader:
            number += 1
            if cells:  # a blank line is no row
                yield number, cells  # type: ignore[misc]
    except UnicodeDecodeError:
        other = "UTF-8" if encoding is Encoding.GBK else "GBK"
        raise FileProblem(
            f"the file is not valid {label} (after row {number:,}, about byte "
            f"{source.bytes:,}): save it as {label}, or choose {other} if it is in {other}"
        ) from None
    except csv.Error as exc:
        raise FileProblem(
            f"row {number + 1:,} is not valid CSV ({exc}): quote fields that hold commas, "
            'quotes or line breaks, and double quotes inside them ("")'
        ) from None


@contextmanager
def _xlsx_rows(
    source: HashingReader, sheet: str, work_dir: Path, max_unpacked: int
) -> Iterator[Iterator[Row]]:
    import openpyxl  # heavy: only when an XLSX file comes

    work_dir.mkdir(parents=True, exist_ok=True)
    # A zip is read from its end: the stream is spooled to a private file first.
    with tempfile.NamedTemporaryFile(dir=work_dir, prefix="import-", suffix=".xlsx") as spool:
        shutil.copyfileobj(source, spool, 1024 * 1024)
        spool.flush()
        _check_zip(Path(spool.name), max_unpacked)
        try:
            book = openpyxl.load_workbook(spool.name, read_only=True, data_only=False)
        except Exception:
            raise FileProblem(
                "the file is not an Excel workbook (.xlsx) that can be read: save it as "
                ".xlsx (Excel Workbook), or upload it as CSV"
            ) from None
        try:
            names = book.sheetnames
            if sheet and sheet not in names:
                raise FileProblem(f"the workbook has no sheet {sheet!r}; its sheets: {names}")
            worksheet = book[sheet or names[0]]
            # The read-only reader stops at the range the sheet declares (<dimension>); a
            # writer that declares too small a one ("A1") would lose rows and columns.
            worksheet.reset_dimensions()
            yield _sheet_rows(worksheet)
        finally:
            book.close()


def _check_zip(path: Path, max_unpacked: int) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            # Python's zip reader never yields more than an entry's declared size.
            unpacked = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise FileProblem("the file is not an .xlsx workbook (not a zip archive)") from None
    if unpacked > max_unpacked:
        raise FileProblem(
            f"the workbook unpacks to {unpacked:,} bytes, more than import.max_unpacked_bytes "
            f"({max_unpacked:,}): split it or upload it as CSV"
        )


# Excel's last row. The parser keeps every row element it has read (cleared, but in the tree:
# about 85 bytes each), so rows past this, which no spreadsheet writes, would only grow memory.
EXCEL_MAX_ROWS = 1_048_576


def _sheet_rows(ws: Any) -> Iterator[Row]:
    for number, cells in enumerate(ws.iter_rows(), start=1):
        if number > EXCEL_MAX_ROWS:
            raise FileProblem(
                f"the sheet has rows past row {EXCEL_MAX_ROWS:,}, the last one Excel has: "
                "split it into workbooks of fewer rows, or upload it as CSV"
            )
        values = []
        for cell in cells:
            if cell.data_type == "f":
                raise FileProblem(
                    f"row {number:,}, column {cell.column_letter} holds a formula: copy the "
                    "sheet and paste values only, so that what is approved is what is written"
                )
            values.append(cell.value)
        while values and values[-1] is None:  # formatted but empty cells at the end
            values.pop()
        if values:
            yield number, values
