"""An XLSX sheet read row by row: every kind of formula refused by row and column, whatever
the XML prefix; each cell as the sheet stores it (an error cell as its text, a whole number
as an int however long), all of them even where the sheet declares too small a range; the
sheet by name or the first; the unpacked-size and row limits; the digest and the size limit
of the bytes read."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import datetime, time
from pathlib import Path

import openpyxl
import pytest

from service.domain.model import ExportType
from service.load.files import FileProblem, HashingReader, Row, open_rows

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def read(data: bytes, tmp_path: Path, *, sheet: str = "", max_unpacked: int = 1 << 30) -> list[Row]:
    source = HashingReader(io.BytesIO(data), 1 << 30)
    with open_rows(
        source, ExportType.EXCEL, sheet=sheet, work_dir=tmp_path, max_unpacked=max_unpacked
    ) as rows:
        return list(rows)


def saved(book: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_sheet_xml(rows_xml: str, prefix: str = "", dimension: str = "") -> bytes:
    """A workbook whose first sheet is `rows_xml` (written with no prefix), the elements
    given `prefix` as Excel's own and some other writers do (<x:row>, <x:c>, <x:f>), and
    the used range the sheet declares, if any (<dimension ref="A1:C3"/>)."""
    if prefix:
        rows_xml = re.sub(r"<(/?)", rf"<\1{prefix}:", rows_xml)
    tag = f"{prefix}:" if prefix else ""
    declaration = f"xmlns:{prefix}" if prefix else "xmlns"
    declared = f'<{tag}dimension ref="{dimension}"/>' if dimension else ""
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><{tag}worksheet {declaration}="{MAIN_NS}">'
        f"{declared}<{tag}sheetData>{rows_xml}</{tag}sheetData></{tag}worksheet>"
    )
    template = zipfile.ZipFile(io.BytesIO(saved(openpyxl.Workbook())))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for entry in template.infolist():
            is_sheet = entry.filename == "xl/worksheets/sheet1.xml"
            book.writestr(entry, sheet if is_sheet else template.read(entry))
    return out.getvalue()


FORMULAS = {
    "plain": ('<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>A1+1</f><v>2</v></c></row>', 1, "B"),
    # A shared formula's later cells hold only a reference to the first one's text.
    "shared, first cell": (
        '<row r="2"><c r="A2"><v>2</v></c><c r="C2"><f t="shared" ref="C2:C3" si="0">A2*2</f>'
        '<v>4</v></c></row><row r="3"><c r="C3"><f t="shared" si="0"/><v>6</v></c></row>',
        2,
        "C",
    ),
    "shared, later cell only": (
        '<row r="1"><c r="A1"><v>1</v></c></row>'
        '<row r="3"><c r="A3"><v>3</v></c><c r="D3"><f t="shared" si="0"/><v>6</v></c></row>',
        3,
        "D",
    ),
    "array": (
        '<row r="1"><c r="A1"><v>1</v></c></row>'
        '<row r="2"><c r="E2"><f t="array" ref="E2:E3">A1:A2*2</f><v>2</v></c></row>',
        2,
        "E",
    ),
}


@pytest.mark.parametrize("prefix", ["", "x"], ids=["default namespace", "x: prefix"])
@pytest.mark.parametrize("kind", FORMULAS)
def test_every_kind_of_formula_is_refused_naming_its_row_and_column(
    kind: str, prefix: str, tmp_path: Path
) -> None:
    rows_xml, row, column = FORMULAS[kind]
    with pytest.raises(FileProblem, match=f"row {row}, column {column} holds a formula"):
        read(with_sheet_xml(rows_xml, prefix), tmp_path)


def test_a_formula_written_by_openpyxl_is_refused(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["code", "discount"])
    book.active.append(["F1", "=1+1"])
    with pytest.raises(FileProblem, match="row 2, column B holds a formula: copy the sheet"):
        read(saved(book), tmp_path)


@pytest.mark.parametrize("prefix", ["", "x"], ids=["default namespace", "x: prefix"])
def test_cells_come_as_the_sheet_stores_them(prefix: str, tmp_path: Path) -> None:
    rows_xml = (
        '<row r="1"><c r="A1" t="e"><v>#N/A</v></c><c r="B1" t="e"><v>#DIV/0!</v></c>'
        '<c r="C1"><v>12345678901234567</v></c><c r="D1"><v>-7</v></c><c r="E1"><v>0.1</v></c>'
        '<c r="F1"><v>1E+20</v></c><c r="G1" t="b"><v>1</v></c><c r="H1" t="b"><v>0</v></c>'
        '<c r="I1" t="inlineStr"><is><t>inline 中文</t></is></c><c r="J1" t="str"><v>text</v></c>'
        "</row>"
    )
    assert read(with_sheet_xml(rows_xml, prefix), tmp_path) == [
        # An error cell reaches the column's check as its text, never as an empty cell (NULL);
        # a whole number keeps every digit, where a reader that yields floats keeps 16.
        (
            1,
            [
                "#N/A",
                "#DIV/0!",
                12345678901234567,
                -7,
                0.1,
                1e20,
                True,
                False,
                "inline 中文",
                "text",
            ],
        )
    ]


def test_typed_values_gaps_and_trailing_empties(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["text", "int", "float", "date", "datetime", "time", "empty", "long"])
    typed = [
        'a, "b"\n中文',
        42,
        1.5,
        datetime(2030, 1, 2),
        datetime(1999, 12, 31, 23, 59, 59, 678000),
        time(13, 14, 15),
        None,
        "长" * 32_000,
    ]
    ws.append(typed)
    ws.append([])  # a blank row is no row, and the rows after it keep their numbers
    ws.append([None, None, "after the gap"])
    ws["J4"].number_format = "0.00"  # a formatted cell with no value past the last one
    assert read(saved(book), tmp_path) == [
        (1, ["text", "int", "float", "date", "datetime", "time", "empty", "long"]),
        (2, typed),
        (4, [None, None, "after the gap"]),
    ]


def test_the_sheet_is_chosen_by_name_and_is_the_first_by_default(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "first"
    book.active.append(["from first"])
    book.create_sheet("second").append(["from second", 2])
    data = saved(book)
    assert read(data, tmp_path) == [(1, ["from first"])]
    assert read(data, tmp_path, sheet="second") == [(1, ["from second", 2])]
    with pytest.raises(FileProblem, match=r"no sheet 'third'; its sheets: \['first', 'second'\]"):
        read(data, tmp_path, sheet="third")


def test_a_workbook_that_unpacks_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["x" * 1000])
    data = saved(book)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        unpacked = sum(i.file_size for i in z.infolist())
    assert read(data, tmp_path, max_unpacked=unpacked) == [(1, ["x" * 1000])]
    with pytest.raises(FileProblem, match=f"unpacks to {unpacked:,} bytes, more than import"):
        read(data, tmp_path, max_unpacked=unpacked - 1)


def test_the_digest_and_size_limit_are_of_the_bytes_read(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["code", 1])
    data = saved(book)
    source = HashingReader(io.BytesIO(data), len(data))
    with open_rows(source, ExportType.EXCEL, work_dir=tmp_path, max_unpacked=1 << 30) as rows:
        assert list(rows) == [(1, ["code", 1])]
    source.drain()
    assert (source.bytes, source.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())

    too_small = HashingReader(io.BytesIO(data), len(data) - 1)
    with (
        pytest.raises(FileProblem, match=r"larger than import\.max_bytes"),
        open_rows(too_small, ExportType.EXCEL, work_dir=tmp_path, max_unpacked=1 << 30),
    ):
        pass


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match=r"not an \.xlsx workbook"):
        read(b"code,discount\r\nA1,1\r\n", tmp_path)
    not_a_book = io.BytesIO()
    with zipfile.ZipFile(not_a_book, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(FileProblem, match="not an Excel workbook"):
        read(not_a_book.getvalue(), tmp_path)


def test_a_sheet_that_declares_too_small_a_range_loses_no_row_or_column(tmp_path: Path) -> None:
    rows_xml = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{r}</v></c>' for c in "ABC") + "</row>"
        for r in (1, 2, 3)
    )
    for declared in ("A1", "A1:B2"):
        sheet = with_sheet_xml(rows_xml, dimension=declared)
        assert read(sheet, tmp_path) == [(1, [1, 1, 1]), (2, [2, 2, 2]), (3, [3, 3, 3])]


def test_a_row_past_excels_last_is_refused(tmp_path: Path) -> None:
    last = '<row r="1048576"><c r="A1048576"><v>1</v></c></row>'
    assert read(with_sheet_xml(last), tmp_path) == [(1_048_576, [1])]
    past = '<row r="1048577"><c r="A1048577"><v>1</v></c></row>'
    with pytest.raises(FileProblem, match="rows past row 1,048,576, the last one Excel has"):
        read(with_sheet_xml(past), tmp_path)
