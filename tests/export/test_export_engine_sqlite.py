"""Exports from SQLite files: read-only opening, layouts, sheet splitting, failures."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.datasources import Datasource
from service.domain.model import Content, Encoding, ExportSpec, ExportType, TableOption
from service.export.engine import ExportCanceled, ExportFailed, ExportOptions, export


@pytest.fixture
def db(tmp_path: Path) -> tuple[Datasource, sa.Engine, Path]:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, note TEXT, score REAL,
                             born TEXT, photo BLOB);
        CREATE INDEX people_name ON people (name);
        CREATE TABLE "odd/name" (x INTEGER);
        INSERT INTO "odd/name" VALUES (1);
        """
    )
    conn.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?)",
        [
            (1, "张三", 'a,b "c"\nd', 1.5, "2024-01-31", b"\x00\x01"),
            (2, "", None, None, "not a date", None),
            (3, None, "😀", 1e20, None, b""),
        ],
    )
    conn.commit()
    conn.close()
    ds = Datasource("lite", make_url(f"sqlite:///{path}"))
    engine = sa.create_engine(ds.url)
    yield ds, engine, tmp_path / "out"
    engine.dispose()


def run(db, spec: ExportSpec, **kw: object):
    ds, engine, out = db
    options = kw.pop("options", ExportOptions())
    return export(spec, ds, engine, work_dir=out, basename="lite", options=options, **kw)


def rows_of(data: bytes, encoding: str = "utf-8") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def test_table_csv_reads_back_cell_by_cell(db) -> None:
    result = run(db, ExportSpec(tables=(TableOption("people"),)))
    assert rows_of(result.path.read_bytes()) == [
        ["id", "name", "note", "score", "born", "photo"],
        ["1", "张三", 'a,b "c"\nd', "1.5", "2024-01-31", "\\x0001"],
        ["2", "", "", "", "not a date", ""],
        ["3", "", "😀", "1e+20", "", "\\x"],
    ]
    assert b'\r\n2,"",,,not a date,\r\n' in result.path.read_bytes()


def test_export_cannot_write_to_the_file(db) -> None:
    for statement in ("DELETE FROM people RETURNING id", "UPDATE people SET name = 'x'"):
        with pytest.raises(ExportFailed, match=r"readonly|read-only|query_only"):
            run(db, ExportSpec(statement=statement))
    _, engine, _ = db
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM people").scalar() == 3


def test_fields_filter_and_structure_in_a_zip(db) -> None:
    spec = ExportSpec(
        tables=(
            TableOption("people", all_fields=False, fields=("id", "name"), filter="id > 1"),
            TableOption("odd/name"),
        ),
        content=Content.ALL,
    )
    result = run(db, spec)
    with zipfile.ZipFile(result.path) as zf:
        assert zf.namelist() == ["people.csv", "odd_name.csv", "schema.sql"]
        assert rows_of(zf.read("people.csv")) == [["id", "name"], ["2", ""], ["3", ""]]
        schema = zf.read("schema.sql").decode()
    assert "CREATE TABLE people" in schema and "CREATE INDEX people_name" in schema


def test_struct_alone_is_one_sql_file(db) -> None:
    result = run(db, ExportSpec(tables=(TableOption("people"),), content=Content.STRUCT))
    assert result.filename == "lite.sql" and result.content_type.startswith("application/sql")
    assert result.path.read_text().startswith("-- people\nCREATE TABLE people")


def test_sheets_split_when_full(db) -> None:
    spec = ExportSpec(
        statement="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
        "SELECT i FROM n",
        type=ExportType.EXCEL,
    )
    result = run(db, spec, options=ExportOptions(fetch_size=3, xlsx_max_rows=4))
    wb = openpyxl.load_workbook(result.path)
    assert wb.sheetnames == ["result", "result (2)", "result (3)", "result (4)"]
    sheets = [[r[0] for r in wb[n].iter_rows(values_only=True)] for n in wb.sheetnames]
    assert sheets == [["i", 1, 2, 3], ["i", 4, 5, 6], ["i", 7, 8, 9], ["i", 10]]
    assert result.rows == 10


def test_long_text_fails_xlsx_with_row_and_column(db) -> None:
    spec = ExportSpec(
        statement="SELECT id, CASE id WHEN 2 THEN printf('%.40000c', 'x') END AS blob_text "
        "FROM people ORDER BY id",
        type=ExportType.EXCEL,
    )
    with pytest.raises(ExportFailed, match=r"Column `blob_text` has 40,000 characters in row 2"):
        run(db, spec)
    assert list(db[2].iterdir()) == []


def test_gbk_failure_leaves_no_file(db) -> None:
    with pytest.raises(ExportFailed, match=r"Column `note` has '😀' in row 3 that GBK"):
        run(db, ExportSpec(tables=(TableOption("people"),), encoding=Encoding.GBK))
    assert list(db[2].iterdir()) == []
    ok = run(
        db, ExportSpec(statement="SELECT name FROM people WHERE id = 1", encoding=Encoding.GBK)
    )
    assert ok.path.read_bytes() == "name\r\n张三\r\n".encode("gbk")


def test_timeout_interrupts_a_runaway_query(db) -> None:
    spec = ExportSpec(
        statement="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n"
    )
    started = time.monotonic()
    with pytest.raises(ExportFailed, match="statement timeout of 1 s"):
        run(db, spec, options=ExportOptions(statement_timeout_s=1))
    assert time.monotonic() - started < 10


def test_cancel_stops_the_export(db) -> None:
    spec = ExportSpec(
        statement="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n"
    )
    deadline = time.monotonic() + 0.5
    with pytest.raises(ExportCanceled, match="canceled"):
        run(db, spec, cancelled=lambda: time.monotonic() > deadline)


def test_unknown_names_fail_clearly(db) -> None:
    with pytest.raises(ExportFailed, match="Table `nope` does not exist in database `main`"):
        run(db, ExportSpec(tables=(TableOption("nope"),)))
    with pytest.raises(ExportFailed, match="Table `people` has no column `nope`"):
        run(db, ExportSpec(tables=(TableOption("people", all_fields=False, fields=("nope",)),)))
    with pytest.raises(ExportFailed, match="filter"):
        run(db, ExportSpec(tables=(TableOption("people", filter="id = (SELECT 1)"),)))
