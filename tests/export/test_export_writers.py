"""Writers on their own: canonical text, CSV quoting, GBK errors, XLSX cells, safe names."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from service.domain.model import Encoding
from service.export.writers import CsvWriter, WriteError, XlsxBook, safe_filename, text_of


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (2**63, "9223372036854775808"),
        (Decimal("1.50"), "1.50"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("1E+3"), "1000"),
        (0.1, "0.1"),
        (1.0, "1"),
        (1e15, "1e+15"),
        (123456789012345.0, "123456789012345"),
        (1.5e-5, "1.5e-05"),
        (-0.0, "-0"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (
            datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=8))),
            "2024-01-02T03:04:05.000006+08:00",  # in its zone (the source gives the task's)
        ),
        (
            datetime(1900, 1, 1, 8, 5, 43, tzinfo=timezone(timedelta(seconds=29143))),
            "1900-01-01T08:05:43+08:05:43",  # a local mean time keeps its seconds
        ),
        (date(2024, 2, 29), "2024-02-29"),
        (time(13, 45, 0, 250000), "13:45:00.25"),
        (timedelta(hours=838, minutes=59, seconds=59), "838:59:59"),
        (-timedelta(hours=1), "-01:00:00"),
        (b"\x00\xff", "\\x00ff"),
        (memoryview(b"\x01"), "\\x01"),
        ({"k": "值", "n": [1, None]}, '{"k": "值", "n": [1, null]}'),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_canonical_text(value: object, text: str) -> None:
    assert text_of(value) == text


def write_csv(rows: list[tuple[object, ...]], header: list[str], **kw: object) -> bytes:
    out = io.BytesIO()
    w = CsvWriter(out, **kw)
    w.header(header)
    w.write_rows(rows)
    assert w.bytes == len(out.getvalue()) and w.rows == len(rows)
    return out.getvalue()


def test_csv_keeps_null_and_empty_string_apart() -> None:
    data = write_csv([("", None, "a,b"), (None, "", 'q"'), ("x", "y\r\nz", 1)], ["a", "b", "c"])
    assert data == b'a,b,c\r\n"",,"a,b"\r\n,"","q"""\r\nx,"y\r\nz",1\r\n'
    assert list(csv.reader(io.StringIO(data.decode(), newline=""))) == [
        ["a", "b", "c"],
        ["", "", "a,b"],
        ["", "", 'q"'],
        ["x", "y\r\nz", "1"],
    ]


def test_csv_single_column_null_is_an_empty_line() -> None:
    assert write_csv([(None,), ("",), ("\\.",)], ["v"]) == b'v\r\n\r\n""\r\n"\\."\r\n'


def test_csv_bom_and_gbk() -> None:
    assert write_csv([("中",)], ["v"], bom=True).startswith(b"\xef\xbb\xbfv\r\n")
    gbk = write_csv([("中文,逗号",)], ["列"], encoding=Encoding.GBK, bom=True)
    assert gbk.decode("gbk") == '列\r\n"中文,逗号"\r\n'


def test_gbk_error_names_row_column_and_character() -> None:
    out = io.BytesIO()
    w = CsvWriter(out, Encoding.GBK)
    w.header(["id", "note"])
    w.write_rows([(1, "fine")] * 1041)
    with pytest.raises(WriteError) as info:
        w.write_rows([(1042, "€ price")])
    assert str(info.value) == (
        "Column `note` has '€' in row 1,042 that GBK cannot encode: "
        "choose UTF-8 or remove the character."
    )


def test_xlsx_cells_keep_every_digit(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    book = XlsxBook(path)
    t = book.table("data", ["v"])
    values = [
        10**15 - 1, 10**15, Decimal("12.50"), Decimal("1234567890.123456789"), 1.25,
        float("inf"), True, date(2024, 1, 31), datetime(2024, 1, 31, 12, 0, tzinfo=UTC),
        time(8, 30), b"\x01", {"a": 1}, "=1+1", "https://example.com",
    ]  # fmt: skip
    t.write_rows([(v,) for v in values])
    book.close()
    ws = openpyxl.load_workbook(path)["data"]
    got = [r[0] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert got[:7] == [
        10**15 - 1, "1000000000000000", 12.5, "1234567890.123456789", 1.25, "Infinity", True
    ]  # fmt: skip
    assert ws["A4"].number_format == "0.00"
    assert got[7] == datetime(2024, 1, 31) and got[8] == datetime(2024, 1, 31, 12, 0)
    assert got[9] == time(8, 30)
    assert got[10:] == ["\\x01", '{"a": 1}', "=1+1", "https://example.com"]


def test_sheet_names_are_valid_and_unique(tmp_path: Path) -> None:
    book = XlsxBook(tmp_path / "n.xlsx", max_rows=2)
    long = "a" * 40
    assert book.sheet_name("a/b:c") == "a_b_c"
    assert book.sheet_name("A_B_C") == "A_B_C~2"
    assert book.sheet_name(long) == "a" * 31
    assert book.sheet_name(long, 2) == "a" * 27 + " (2)"
    assert book.sheet_name("history") == "history~2"
    book.close()


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("prod/orders 2024-01-31T10:00:00", "prod_orders_2024-01-31T10_00_00"),
        ("..\\..\\etc\\passwd", "etc_passwd"),
        ("CON", "_CON"),
        ("订单 导出", "订单_导出"),
        ("", "export"),
        ("a" * 300, "a" * 120),
    ],
)
def test_safe_filenames(given: str, safe: str) -> None:
    assert safe_filename(given) == safe
