"""Exports from a real PostgreSQL: tricky values read back cell by cell, the read-only wall,
the statement timeout, COPY and row paths giving the same text."""

from __future__ import annotations

import csv
import io
import threading
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from service.datasources import Datasource
from service.domain.model import Content, Encoding, ExportSpec, ExportType, TableOption
from service.export.engine import ExportCanceled, ExportFailed, ExportOptions, export

pytestmark = pytest.mark.postgres

NOTE = 'comma, "quote"\r\nnew line'
ROWS_SQL = """
CREATE TABLE orders (
    id bigint PRIMARY KEY, name text, note text, amount numeric(38,10), big bigint,
    day date, at timestamptz, flag boolean, doc jsonb, raw bytea, ratio float8
);
INSERT INTO orders VALUES
 (1, '中文名', 'comma, "quote"' || E'\\r\\n' || 'new line', 12345678901234567890.0123456789,
  9007199254740993, '2024-02-29', '2024-01-02 03:04:05.123456+08', true,
  '{"k": "值", "n": [1, 2.50]}', '\\x00ff', 0.1),
 (2, '', NULL, -0.0000000001, -9223372036854775808, NULL, NULL, false, NULL, '', 1e15),
 (3, NULL, 'emoji 😀', 0, 0, '1900-01-01', '1999-12-31 23:59:59+00', NULL, '[]', NULL, NULL);
CREATE SEQUENCE counter;
CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS
  $$ UPDATE orders SET name = 'changed' WHERE id = 1 RETURNING 1 $$;
"""

EXPECTED = [
    ["id", "name", "note", "amount", "big", "day", "at", "flag", "doc", "raw", "ratio"],
    [
        "1", "中文名", NOTE, "12345678901234567890.0123456789", "9007199254740993",
        "2024-02-29", "2024-01-01T19:04:05.123456+00:00", "true", '{"k": "值", "n": [1, 2.50]}',
        "\\x00ff", "0.1",
    ],
    ["2", "", "", "-0.0000000001", "-9223372036854775808", "", "", "false", "", "\\x", "1e+15"],
    [
        "3", "", "emoji 😀", "0.0000000000", "0", "1900-01-01", "1999-12-31T23:59:59+00:00", "",
        "[]", "", "",
    ],
]  # fmt: skip


@pytest.fixture(scope="module")
def pg(pg_url: URL) -> tuple[Datasource, sa.Engine]:
    engine = sa.create_engine(pg_url, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.exec_driver_sql(ROWS_SQL)
    yield Datasource("pg", pg_url), engine
    engine.dispose()


def run(pg: tuple[Datasource, sa.Engine], tmp_path: Path, spec: ExportSpec, **kw: object):
    ds, engine = pg
    options = kw.pop("options", ExportOptions())
    return export(
        spec, ds, engine, work_dir=tmp_path, basename="pg/orders 2024", options=options, **kw
    )


def read_csv(data: bytes, encoding: str = "utf-8") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def test_csv_through_copy_reads_back_cell_by_cell(pg, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = run(
        pg,
        tmp_path,
        ExportSpec(statement="SELECT * FROM orders ORDER BY id"),
        progress=lambda r, b: seen.append((r, b)),
    )
    assert result.filename == "pg_orders_2024.csv"
    assert result.path == tmp_path / result.filename
    assert result.rows == 3
    assert result.bytes == result.path.stat().st_size
    data = result.path.read_bytes()
    assert read_csv(data) == EXPECTED
    lines = data.split(b"\r\n")
    # NULL is an empty field, the empty string a quoted one
    assert lines[3].startswith(b'2,"",,')
    assert [p.name for p in tmp_path.iterdir()] == [result.filename]
    assert seen[-1] == (3, result.bytes)


def test_copy_and_row_paths_write_the_same_text(pg, tmp_path: Path) -> None:
    # GBK goes through Python rows; keep to characters GBK holds so both can run.
    query = (
        "SELECT id, name, amount, big, day, at, flag, doc, raw, ratio, "
        "time '13:45:00.25' AS t, timestamp '2024-01-02 03:04:05' AS ts, "
        "real '1e6' AS r4, float8 '1e-5' AS tiny, float8 '-0' AS negzero, "
        "float8 'Infinity' AS inf, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, "
        '\'{"b": 1.10,  "a": 1}\'::json AS j '
        "FROM orders WHERE id <> 3 ORDER BY id"
    )
    fast = run(pg, tmp_path, ExportSpec(statement=query)).path.read_bytes()
    slow = run(pg, tmp_path, ExportSpec(statement=query, encoding=Encoding.GBK))
    assert slow.content_type == "text/csv; charset=gbk"
    assert slow.path.read_bytes().decode("gbk") == fast.decode("utf-8")


def test_floats_print_identically_on_both_paths(pg, tmp_path: Path) -> None:
    values = [
        "0.1", "1e15", "123456789012345", "1e16", "1.5e-5", "0.0001", "0.00012345",
        "2.2250738585072014e-308", "1.7976931348623157e308", "-3.14", "100", "1e-7", "5e-324",
        "NaN", "-Infinity", "123456.789e3", "9999999999999998",
    ]  # fmt: skip
    query = (
        " UNION ALL ".join(
            f"SELECT {i} AS i, float8 '{v}' AS f, real '{v if 'e3' not in v else 1}' AS r"
            for i, v in enumerate(values)
            if not v.startswith(("2.2", "1.7", "5e"))
        )
        + " UNION ALL "
        + " UNION ALL ".join(f"SELECT {100 + i}, float8 '{v}', NULL" for i, v in enumerate(values))
    )
    query = f"SELECT * FROM ({query}) AS x ORDER BY i"
    fast = run(pg, tmp_path, ExportSpec(statement=query)).path.read_bytes()
    slow = run(pg, tmp_path, ExportSpec(statement=query, encoding=Encoding.GBK)).path.read_bytes()
    assert slow.decode("gbk") == fast.decode("utf-8")
    assert b"\r\n101,1e+15,\r\n" in fast and b"\r\n113,NaN,\r\n" in fast


def test_xlsx_reads_back_with_types(pg, tmp_path: Path) -> None:
    result = run(
        pg,
        tmp_path,
        ExportSpec(tables=(TableOption("orders"),), type=ExportType.EXCEL),
    )
    assert result.filename == "pg_orders_2024.xlsx"
    wb = openpyxl.load_workbook(result.path)
    assert wb.sheetnames == ["orders"]
    rows = sorted(wb["orders"].iter_rows(min_row=2, values_only=True), key=lambda r: r[0])
    header = next(wb["orders"].iter_rows(max_row=1, values_only=True))
    assert list(header) == EXPECTED[0]
    assert wb["orders"].freeze_panes == "A2"
    assert wb["orders"]["A1"].font.b
    r1, r2, r3 = rows
    # xlsxwriter stores CR as _x000D_, which Excel reads back as CR and openpyxl leaves be
    assert r1[:3] == (1, "中文名", NOTE.replace("\r", "_x000D_"))
    assert r1[3] == "12345678901234567890.0123456789"  # 30 digits: text, nothing lost
    assert r1[4] == "9007199254740993"  # beyond 15 digits: text
    assert r1[5] == datetime(2024, 2, 29)
    assert abs(r1[6] - datetime(2024, 1, 1, 19, 4, 5, 123456)) < timedelta(milliseconds=1)
    assert r1[7] is True
    assert r1[8] == '{"k": "值", "n": [1, 2.50]}'
    assert r1[9] == "\\x00ff"
    assert r1[10] == 0.1
    assert r2[1:3] == ("", None)
    assert r2[3] == pytest.approx(-1e-10)
    assert r2[4] == "-9223372036854775808"
    assert r2[5:7] == (None, None)
    assert r2[7] is False
    assert r2[9] == "\\x"
    assert r3[3] == 0 and r3[4] == 0
    assert r3[5] == datetime(1900, 1, 1)
    assert r3[6] == datetime(1999, 12, 31, 23, 59, 59)


def test_tables_and_structure_make_one_zip(pg, tmp_path: Path) -> None:
    spec = ExportSpec(
        tables=(
            TableOption("orders", all_fields=False, fields=("id", "note"), filter="id >= 2"),
            TableOption("orders", all_fields=False, fields=("id",), filter="name = 'O''Brien'"),
        ),
        content=Content.ALL,
    )
    result = run(pg, tmp_path, spec)
    assert result.filename.endswith(".zip") and result.content_type == "application/zip"
    with zipfile.ZipFile(result.path) as zf:
        assert zf.namelist() == ["orders.csv", "orders (2).csv", "schema.sql"]
        first = read_csv(zf.read("orders.csv"))
        assert first == [["id", "note"], ["2", ""], ["3", "emoji 😀"]]
        assert read_csv(zf.read("orders (2).csv")) == [["id"]]
        schema = zf.read("schema.sql").decode()
    assert "CREATE TABLE public.orders" in schema and "amount NUMERIC(38, 10)" in schema
    assert result.rows == 2


def test_struct_of_a_query_names_result_columns_and_types(pg, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT id, amount, at FROM orders", content=Content.STRUCT)
    result = run(pg, tmp_path, spec)
    assert result.filename.endswith(".sql")
    text = result.path.read_text()
    assert 'CREATE TABLE "result" (' in text
    assert '"id" int8' in text and '"amount" numeric(38,10)' in text
    assert '"at" timestamptz' in text


def test_query_placeholders_are_bound(pg, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT id FROM orders WHERE day = {{run_date}} ORDER BY id")
    result = run(pg, tmp_path, spec, params={"run_date": date(2024, 2, 29), "unused": 1})
    assert read_csv(result.path.read_bytes()) == [["id"], ["1"]]
    with pytest.raises(ExportFailed, match="run_date"):
        run(pg, tmp_path, spec)


@pytest.mark.parametrize("kind", [ExportType.CSV, ExportType.EXCEL])
def test_colons_in_literals_stay_text(pg, tmp_path: Path, kind: ExportType) -> None:
    """Only {{placeholders}} are parameters: ':x' and '10:30' are data, also on COPY."""
    spec = ExportSpec(statement="SELECT ':x' AS a, ' :y' AS b, '10:30' AS c", type=kind)
    result = run(pg, tmp_path, spec)
    if kind is ExportType.CSV:
        assert read_csv(result.path.read_bytes()) == [["a", "b", "c"], [":x", " :y", "10:30"]]
    else:
        sheet = openpyxl.load_workbook(result.path, read_only=True).worksheets[0]
        assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
            ["a", "b", "c"],
            [":x", " :y", "10:30"],
        ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE orders SET name = 'x' RETURNING id",
        "DELETE FROM orders RETURNING id",
        "INSERT INTO orders (id) VALUES (99) RETURNING id",
        "WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM d",
        "SELECT nextval('counter')",
        "SELECT sneaky()",
    ],
)
def test_read_only_wall_refuses_writes(pg, tmp_path: Path, statement: str) -> None:
    _, engine = pg
    with engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT * FROM orders ORDER BY id").all()
    for kind in (ExportType.CSV, ExportType.EXCEL):
        with pytest.raises(ExportFailed) as info:
            run(pg, tmp_path, ExportSpec(statement=statement, type=kind))
        assert "\n" not in str(info.value)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM orders ORDER BY id").all() == before
        assert conn.exec_driver_sql("SELECT last_value, is_called FROM counter").one() == (
            1,
            False,
        )
    assert list(tmp_path.iterdir()) == []


def test_transaction_is_read_only_with_timeout(pg, tmp_path: Path) -> None:
    spec = ExportSpec(
        statement="SELECT current_setting('transaction_read_only') AS ro, "
        "current_setting('statement_timeout') AS st"
    )
    result = run(pg, tmp_path, spec, options=ExportOptions(statement_timeout_s=7))
    assert read_csv(result.path.read_bytes())[1] == ["on", "7s"]


def test_statement_timeout_stops_a_long_query(pg, tmp_path: Path) -> None:
    for kind in (ExportType.CSV, ExportType.EXCEL):
        started = time.monotonic()
        with pytest.raises(ExportFailed, match="statement timeout of 1 s"):
            run(
                pg,
                tmp_path,
                ExportSpec(statement="SELECT pg_sleep(60)", type=kind),
                options=ExportOptions(statement_timeout_s=1),
            )
        assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_cancel_interrupts_a_running_query(pg, tmp_path: Path) -> None:
    flag = threading.Event()
    threading.Timer(0.5, flag.set).start()
    started = time.monotonic()
    with pytest.raises(ExportCanceled):
        run(pg, tmp_path, ExportSpec(statement="SELECT pg_sleep(60)"), cancelled=flag.is_set)
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_cancel_between_batches_removes_the_partial_file(pg, tmp_path: Path) -> None:
    calls = iter(range(1000))
    with pytest.raises(ExportCanceled):
        run(
            pg,
            tmp_path,
            ExportSpec(
                statement="SELECT g FROM generate_series(1, 50000) g", type=ExportType.EXCEL
            ),
            options=ExportOptions(fetch_size=1000),
            cancelled=lambda: next(calls) >= 3,
        )
    assert list(tmp_path.iterdir()) == []


def test_gbk_refuses_emoji_naming_row_and_column(pg, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT id, note FROM orders ORDER BY id", encoding=Encoding.GBK)
    with pytest.raises(ExportFailed) as info:
        run(pg, tmp_path, spec)
    assert str(info.value) == (
        "Column `note` has '😀' in row 3 that GBK cannot encode: "
        "choose UTF-8 or remove the character."
    )
    assert list(tmp_path.iterdir()) == []


def test_database_errors_name_the_problem_without_credentials(pg, tmp_path: Path) -> None:
    with pytest.raises(ExportFailed, match='relation "missing" does not exist'):
        run(pg, tmp_path, ExportSpec(statement="SELECT * FROM missing"))
    with pytest.raises(ExportFailed, match="Table `missing` does not exist"):
        run(pg, tmp_path, ExportSpec(tables=(TableOption("missing"),)))


def test_export_all_tables_to_one_workbook(pg, tmp_path: Path) -> None:
    result = run(
        pg, tmp_path, ExportSpec(export_all=True, type=ExportType.EXCEL, content=Content.ALL)
    )
    wb = openpyxl.load_workbook(result.path, read_only=True)
    assert wb.sheetnames == ["orders", "schema"]
    ddl = [r for r in wb["schema"].iter_rows(min_row=2, values_only=True)]
    assert ddl[0][0] == "orders" and any("CREATE TABLE" in (r[1] or "") for r in ddl)


def test_query_text_with_trailing_comment_and_semicolon(pg, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT 'a%b' AS a, 1 AS a;\n-- the last line is a comment")
    result = run(pg, tmp_path, spec)
    assert read_csv(result.path.read_bytes()) == [["a", "a"], ["a%b", "1"]]
