"""The streamed XLSX writer on its own: the column-at-a-time formatters write exactly what
the value-by-value path writes, LibreOffice reads the workbook as written, and text stays
text whatever it looks like."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.escape import unescape

from service.export.values import ServerText
from service.export.writers import WriteError, XlsxBook

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
IN_CI = os.environ.get("CI", "").lower() == "true"


def sheet_cells(path: Path, sheet: int = 1) -> list[list[tuple[Any, ...]]]:
    """Every row's cells as (reference, type, number format, value or inline text)."""
    with zipfile.ZipFile(path) as zf:
        styles = ET.fromstring(zf.read("xl/styles.xml"))
        data = ET.fromstring(zf.read(f"xl/worksheets/sheet{sheet}.xml"))
    codes = {f.get("numFmtId"): f.get("formatCode") for f in styles.iter(f"{MAIN}numFmt")}
    xfs = [codes.get(xf.get("numFmtId"), "General") for xf in styles.find(f"{MAIN}cellXfs")]
    rows = []
    for row in data.iter(f"{MAIN}row"):
        cells = []
        for c in row:
            t = c.find(f"{MAIN}is/{MAIN}t")
            v = c.find(f"{MAIN}v")
            text = t.text if t is not None else v.text if v is not None else None
            space = t.get("{http://www.w3.org/XML/1998/namespace}space") if t is not None else None
            cells.append((c.get("r"), c.get("t"), xfs[int(c.get("s", "0"))], text, space))
        rows.append(cells)
    return rows


def column_book(path: Path, values: Sequence[Any]) -> Path:
    """A workbook at `path` whose sheet "data" holds `values` in its one column "v"."""
    book = XlsxBook(path)
    book.table("data", ["v"]).write_rows([(v,) for v in values])
    book.close()
    return path


def written(tmp_path: Path, values: list[Any]) -> list[list[tuple[Any, ...]]]:
    return sheet_cells(column_book(tmp_path / f"{uuid.uuid4().hex}.xlsx", values))[1:]


TEXT = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(["&", "<", ">", "\r", "\x00", "\x1f", "\ufffe", "_x0041_", " ", "\n"]),
    max_size=12,
).map("".join)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), ZoneInfo("America/New_York")])
COLUMNS = {
    "text": TEXT,
    "server text": TEXT.map(ServerText),
    "int": st.integers(-(10**16), 10**16),
    "bool": st.booleans(),
    "float": st.floats(),
    "decimal": st.decimals(places=None, allow_nan=True, allow_infinity=True)
    | st.decimals(min_value=-(10**9), max_value=10**9, places=3),
    "datetime": st.datetimes(),
    "zoned datetime": st.datetimes(min_value=datetime(1800, 1, 1), timezones=ZONES),
    "date": st.dates(),
}


@pytest.mark.parametrize("kind", sorted(COLUMNS))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_column_at_a_time_writes_what_each_value_alone_writes(
    tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    values = data.draw(st.lists(st.none() | COLUMNS[kind], min_size=1, max_size=8))
    # A value of another type sends the whole column down the value-by-value path.
    one_by_one = written(tmp_path, [*values, uuid.UUID(int=0)])[:-1]
    assert written(tmp_path, values) == one_by_one


def test_text_is_never_a_formula_or_markup(tmp_path: Path) -> None:
    texts = ["=SUM(A1:A2)", "<r><t>rich</t></r>", "-1", "@x", "+1", "a</t></is></c>"]
    path = column_book(tmp_path / "t.xlsx", texts)
    ws = openpyxl.load_workbook(path)["data"]
    cells = [row[0] for row in ws.iter_rows(min_row=2)]
    assert [c.value for c in cells] == texts
    assert {c.data_type for c in cells} == {"s"}


def test_a_long_cell_names_its_row_in_a_later_batch(tmp_path: Path) -> None:
    book = XlsxBook(tmp_path / "long.xlsx")
    table = book.table("data", ["id", "note"])
    rows = [(i, "x" * (40_000 if i == 1_234 else 3)) for i in range(1, 2_001)]
    with pytest.raises(WriteError, match=r"^Column `note` has 40,000 characters in row 1,234;"):
        table.write_rows(rows)
    book.close()


# What a hostile cell could hold: XML's specials, CDATA's end, control characters, text
# that reads as Excel's _xHHHH_ escape, edge whitespace, formula starts, astral characters.
HOSTILE_TEXT = st.lists(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(
        [
            *("<", ">", "&", '"', "'", "]]>", "\x00", "\x1f", "\r", "\r\n", "\t", " ", "\xa0"),
            *("_x0041_", "_x005F_", "_X0041_", "_x00", "=", "+", "-", "@", "😀", "\U0010fffd"),
        ]
    ),
    max_size=16,
).map("".join)
# Decimals of up to 15 digits at every scale a source may give, and past a double's range.
EDGE_DECIMAL = st.builds(
    lambda digits, exponent, negative: Decimal(f"{'-' if negative else ''}{digits}E{exponent}"),
    st.integers(0, 10**15 - 1),
    st.integers(-320, 320),
    st.booleans(),
)


def read_back(path: Path) -> list[Any]:
    """Column A under the header, as openpyxl reads it, Excel's _xHHHH_ escapes undone
    (openpyxl leaves them in inline strings)."""
    with zipfile.ZipFile(path) as zf:
        for part in zf.namelist():
            if part.endswith((".xml", ".rels")):
                ET.fromstring(zf.read(part))  # every part well-formed
    ws = openpyxl.load_workbook(path)["data"]
    cells = [row[0] for row in ws.iter_rows(min_row=2)]
    for cell in cells:
        assert cell.data_type != "f"
        decimals = cell.number_format.partition(".")[2]
        assert len(decimals) <= 30, "Excel shows at most 30 decimal places"
    return [unescape(c.value) if c.data_type == "s" else c.value for c in cells]


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(texts=st.lists(HOSTILE_TEXT, min_size=1, max_size=10))
def test_hostile_text_reads_back_as_written_and_never_as_a_formula(
    tmp_path: Path, texts: list[str]
) -> None:
    path = column_book(tmp_path / f"{uuid.uuid4().hex}.xlsx", texts)
    assert read_back(path) == texts


def test_text_of_exactly_the_cell_limit_is_kept_and_one_more_fails(tmp_path: Path) -> None:
    at_limit = ["x" * 32_767, "中" * 32_767, " " + "&" * 32_765 + " "]
    path = column_book(tmp_path / "limit.xlsx", at_limit)
    assert read_back(path) == at_limit
    over = XlsxBook(tmp_path / "over.xlsx")
    with pytest.raises(WriteError, match="32,768 characters"):
        over.table("data", ["v"]).write_rows([("<" * 32_768,)])
    over.close()


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(EDGE_DECIMAL, min_size=1, max_size=8))
def test_decimals_at_any_scale_read_back_as_their_value(
    tmp_path: Path, values: list[Decimal]
) -> None:
    path = column_book(tmp_path / f"{uuid.uuid4().hex}.xlsx", values)
    for value, cell in zip(values, read_back(path), strict=True):
        if isinstance(cell, str):
            assert Decimal(cell) == value
        else:
            assert cell == float(value)


# -- LibreOffice --------------------------------------------------------------------------

ROWS = [
    ("text", '中文, "quoted" & <b>', "  edge  ", "_x0041_ stays", "=1+2"),
    ("int", 42, -(10**15) + 1, 10**15, 12345678901234567890),
    ("decimal", Decimal("199.00"), Decimal("-0.5"), Decimal("1E+3"), Decimal("1.2345678901234567")),
    ("float", 0.1, -2.5e-7, float("inf"), float("nan")),
    ("bool", True, False, None, True),
    # (LibreOffice counts days before March 1900 one fewer than Excel, whose serials these are)
    ("date", date(2024, 2, 29), date(2000, 1, 1), date(1900, 3, 1), date(1, 1, 1)),
    (
        "datetime",
        datetime(2024, 1, 2, 3, 4, 5),
        datetime(2024, 1, 2, 3, 4, 5, 678000),
        datetime(2024, 7, 1, 8, 30, tzinfo=timezone(timedelta(hours=8))),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ),
    ("time", time(13, 45, 30), timedelta(hours=30, minutes=5), timedelta(days=-1), None),
]
SHOWN = [
    ["kind", "a", "b", "c", "d"],
    ["text", '中文, "quoted" & <b>', "  edge  ", "_x0041_ stays", "=1+2"],
    ["int", "42", "-999999999999999", "1000000000000000", "12345678901234567890"],
    ["decimal", "199.00", "-0.5", "1000", "1.2345678901234567"],
    ["float", "0.1", "-0.00000025", "Infinity", "NaN"],
    ["bool", "TRUE", "FALSE", "", "TRUE"],
    ["date", "2024-02-29", "2000-01-01", "1900-03-01", "0001-01-01"],
    [
        "datetime",
        "2024-01-02 03:04:05",
        "2024-01-02 03:04:05.678",
        "2024-07-01 08:30:00+08:00",
        "9999-12-31T23:59:59.999999",
    ],
    ["time", "13:45:30", "30:05:00", "-24:00:00", ""],
]


def soffice() -> str:
    path = shutil.which("soffice")
    if path is None:
        if IN_CI:
            pytest.fail("LibreOffice (soffice) is needed under CI=true", pytrace=False)
        pytest.skip("LibreOffice (soffice) is not installed")
    return path


def test_libreoffice_reads_every_sheet_as_written(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    book = XlsxBook(path, max_rows=6)
    book.table("values", ["kind", "a", "b", "c", "d"]).write_rows(ROWS)
    book.close()
    out = tmp_path / "csv"
    # CSV of every sheet (-1), UTF-8 (76), each cell as shown by its number format (true).
    fmt = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
    subprocess.run(
        [soffice(), f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         "--convert-to", fmt, "--outdir", str(out), str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    sheets = []
    for name in ("values", "values (2)"):
        with (out / f"book-{name}.csv").open(encoding="utf-8", newline="") as f:
            sheets.append(list(csv.reader(f)))
    assert sheets[0] == SHOWN[:6]
    assert sheets[1] == [SHOWN[0], *SHOWN[6:]]  # the header repeated on the next sheet


HOSTILE_CELLS = [
    "<a>&amp;\"'", "]]>", "tab\there", "cr\rlf\ncrlf\r\n", "\x01\x1f\x00x", "_x0041_",
    "_x005F_x0041_", "_X0041_", "  lead", "trail  ", " ", "=1+2", "+1", "-1", "@SUM(A1)",
    "😀𝄞\U0010fffd", "\ufffe", "\xa0nbsp\xa0", "中" * 32_767,
]  # fmt: skip


def test_libreoffice_reads_hostile_text_as_written(tmp_path: Path) -> None:
    path = column_book(tmp_path / "hostile.xlsx", HOSTILE_CELLS)
    fmt = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
    subprocess.run(
        [soffice(), f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         "--convert-to", fmt, "--outdir", str(tmp_path / "csv"), str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (out,) = (tmp_path / "csv").iterdir()
    with out.open(encoding="utf-8", newline="") as f:
        cells = [row[0] for row in csv.reader(f)][1:]
    # LibreOffice keeps every line break in a cell as LF.
    assert cells == [t.replace("\r\n", "\n").replace("\r", "\n") for t in HOSTILE_CELLS]
