"""Tricky values exported from real PostgreSQL and MariaDB and read back independently (csv,
openpyxl): intervals as the server's text, decimals with their scale, dates at both ends of
the calendar and beyond Excel's, timestamps with a time zone in the task's zone with their
offset; UTF-8 with a byte-order mark; formula escaping for spreadsheet users."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from service.datasources import Datasource
from service.domain.model import Encoding, ExportSpec, ExportType
from service.export.engine import ExportOptions, export

PG_SETUP = """
CREATE TABLE tricky (
    id int, iv interval, n2 numeric(10,2), n0 numeric(20,0), n_big numeric(30,10),
    d_first date, d_last date, d_inf date, ts_last timestamp, ts_old timestamp, ts_bc timestamp,
    tz_summer timestamptz, tz_winter timestamptz, f text
);
INSERT INTO tricky VALUES
 (1, '1 year 2 mons 3 days 04:05:06.789', 199.00, 12345678901234567890,
  12345678901234567890.0123456789, '0001-01-01', '9999-12-31', 'infinity',
  '9999-12-31 23:59:59.999999', '1899-12-31 12:00:00', '0044-03-15 12:00:00 BC',
  '2024-06-30 16:30:00+00', '2024-01-15 12:00:00+00', '=1+2'),
 (2, '-1 days +02:00:00', 58.50, 0, -0.0000000001, '1900-01-01', '2024-02-29', '-infinity',
  '2024-01-01 00:00:00', '1900-01-01 00:00:00', '2024-01-01 00:00:00',
  '1900-01-01 00:00:00+00', NULL, '-3'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '@SUM(A1)');
"""

PG_CSV = [
    ["id", "iv", "n2", "n0", "n_big", "d_first", "d_last", "d_inf", "ts_last", "ts_old",
     "ts_bc", "tz_summer", "tz_winter", "f"],
    ["1", "1 year 2 mons 3 days 04:05:06.789", "199.00", "12345678901234567890",
     "12345678901234567890.0123456789", "0001-01-01", "9999-12-31", "infinity",
     "9999-12-31T23:59:59.999999", "1899-12-31T12:00:00", "0044-03-15 12:00:00 BC",
     "{summer}", "{winter}", "=1+2"],
    ["2", "-1 days +02:00:00", "58.50", "0", "-0.0000000001", "1900-01-01", "2024-02-29",
     "-infinity", "2024-01-01T00:00:00", "1900-01-01T00:00:00", "2024-01-01T00:00:00",
     "{old}", "", "-3"],
    ["3", "", "", "", "", "", "", "", "", "", "", "", "", "@SUM(A1)"],
]  # fmt: skip

# 2024-06-30 16:30Z, 2024-01-15 12:00Z and 1900-01-01 00:00Z in each zone, as the server
# gives them (Shanghai kept local mean time, +08:05:43, until 1901).
ZONED = {
    "Asia/Shanghai": ("2024-07-01T00:30:00+08:00", "2024-01-15T20:00:00+08:00",
                      "1900-01-01T08:05:43+08:05:43"),
    "America/New_York": ("2024-06-30T12:30:00-04:00", "2024-01-15T07:00:00-05:00",
                         "1899-12-31T19:00:00-05:00"),
    "Asia/Kolkata": ("2024-06-30T22:00:00+05:30", "2024-01-15T17:30:00+05:30",
                     "1900-01-01T05:21:10+05:21:10"),
}  # fmt: skip


def expected_pg(zone: str) -> list[list[str]]:
    summer, winter, old = ZONED[zone]
    return [[c.format(summer=summer, winter=winter, old=old) for c in row] for row in PG_CSV]


@pytest.fixture(scope="module")
def pg(pg_url: URL) -> Any:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(PG_SETUP)
    yield Datasource("pg", pg_url), engine
    with engine.begin() as conn:  # the session's database is shared with other modules
        conn.exec_driver_sql("DROP TABLE tricky")
    engine.dispose()


def run(source: Any, tmp_path: Path, spec: ExportSpec, **options: Any) -> Any:
    ds, engine = source
    return export(spec, ds, engine, work_dir=tmp_path, basename="tricky",
                  options=ExportOptions(fetch_size=2, **options))  # fmt: skip


def read_csv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


QUERY = "SELECT * FROM tricky ORDER BY id"


@pytest.mark.postgres
@pytest.mark.parametrize("zone", sorted(ZONED))
@pytest.mark.parametrize(
    "encoding", [Encoding.UTF8, Encoding.GBK], ids=["copy-path", "row-path"]
)  # GBK reads rows through Python; UTF-8 goes through COPY
def test_postgresql_csv_keeps_the_servers_values(
    pg: Any, tmp_path: Path, zone: str, encoding: Encoding
) -> None:
    result = run(pg, tmp_path, ExportSpec(statement=QUERY, encoding=encoding), timezone=zone)
    assert read_csv(result.path, "gbk" if encoding is Encoding.GBK else "utf-8") == expected_pg(
        zone
    )


@pytest.mark.postgres
def test_postgresql_xlsx_keeps_types_scales_and_zones_and_texts_what_excel_cannot_hold(
    pg: Any, tmp_path: Path
) -> None:
    spec = ExportSpec(statement=QUERY, type=ExportType.EXCEL)
    result = run(pg, tmp_path, spec, timezone="Asia/Shanghai")
    ws = openpyxl.load_workbook(result.path)["result"]
    header = [c.value for c in ws[1]]
    row1 = dict(zip(header, ws[2], strict=True))
    row2 = dict(zip(header, ws[3], strict=True))
    value = {k: c.value for k, c in row1.items()}
    assert value["iv"] == "1 year 2 mons 3 days 04:05:06.789"  # the calendar meaning kept
    assert (value["n2"], row1["n2"].number_format) == (199, "0.00")
    assert (row2["n2"].value, row2["n2"].number_format) == (58.5, "0.00")
    assert value["n0"] == "12345678901234567890"  # beyond 15 digits: text, no digit lost
    assert value["n_big"] == "12345678901234567890.0123456789"
    assert value["d_first"] == "0001-01-01"  # before Excel's calendar
    assert value["d_last"] == datetime(9999, 12, 31)
    assert value["d_inf"] == "infinity"
    assert value["ts_last"] == "9999-12-31T23:59:59.999999"  # past Excel's last instant
    assert value["ts_old"] == "1899-12-31T12:00:00"
    assert value["ts_bc"] == "0044-03-15 12:00:00 BC"
    assert value["tz_summer"] == datetime(2024, 7, 1, 0, 30)  # Shanghai's wall time...
    assert row1["tz_summer"].number_format == 'yyyy-mm-dd hh:mm:ss"+08:00"'  # ...and offset
    assert value["f"] == "=1+2" and row1["f"].data_type == "s"  # text, never a formula
    assert row2["iv"].value == "-1 days +02:00:00"
    assert row2["ts_old"].value == "1900-01-01T00:00:00"  # Excel would read a time of day


@pytest.mark.postgres
@pytest.mark.parametrize("encoding", [Encoding.UTF8, Encoding.GBK], ids=["copy-path", "row-path"])
def test_formula_escaping_touches_only_text(pg: Any, tmp_path: Path, encoding: Encoding) -> None:
    sql = "SELECT f, n2 - 100 AS n, iv, '=x' AS \"=h\" FROM tricky ORDER BY id"
    spec = ExportSpec(statement=sql, encoding=encoding)
    rows = read_csv(run(pg, tmp_path, spec, escape_formulas=True).path, "gbk")
    assert rows == [
        ["f", "n", "iv", "'=h"],  # a header a spreadsheet would run is escaped too
        ["'=1+2", "99.00", "1 year 2 mons 3 days 04:05:06.789", "'=x"],
        ["'-3", "-41.50", "-1 days +02:00:00", "'=x"],
        ["'@SUM(A1)", "", "", "'=x"],
    ]


@pytest.mark.postgres
def test_formulas_are_left_alone_by_default(pg: Any, tmp_path: Path) -> None:
    rows = read_csv(
        run(pg, tmp_path, ExportSpec(statement="SELECT f FROM tricky ORDER BY id")).path
    )
    assert rows == [["f"], ["=1+2"], ["-3"], ["@SUM(A1)"]]


@pytest.mark.postgres
def test_utf8_with_bom_starts_with_the_mark_on_the_copy_path(pg: Any, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT 'é' AS e", encoding=Encoding.UTF8_BOM)
    result = run(pg, tmp_path, spec)
    assert result.path.read_bytes() == "\ufeffe\r\né\r\n".encode()
    assert result.content_type == "text/csv; charset=utf-8"


# -- MariaDB ------------------------------------------------------------------------------

MY_SETUP = [
    """CREATE TABLE tricky (
        id INT, n2 DECIMAL(10,2), n0 DECIMAL(20,0), d_first DATE, d_last DATE,
        dt_last DATETIME(6), dt_old DATETIME, ts TIMESTAMP NULL, t TIME(3), f VARCHAR(20)
    ) DEFAULT CHARSET utf8mb4""",
    "SET time_zone = '+00:00'",
    """INSERT INTO tricky VALUES
     (1, 199.00, 12345678901234567890, '0001-01-01', '9999-12-31',
      '9999-12-31 23:59:59.999999', '1899-12-31 12:00:00', '2024-06-30 16:30:00',
      '-838:59:59', '=1+2'),
     (2, 58.50, 0, '1900-01-01', '2024-02-29', '2024-01-01 00:00:00', '1900-01-01 00:00:00',
      '2024-01-15 12:00:00', '12:34:56.789', '-3'),
     (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '@SUM(A1)')""",
]
MY_CSV = [
    ["id", "n2", "n0", "d_first", "d_last", "dt_last", "dt_old", "ts", "t", "f"],
    ["1", "199.00", "12345678901234567890", "0001-01-01", "9999-12-31",
     "9999-12-31T23:59:59.999999", "1899-12-31T12:00:00", "{summer}", "-838:59:59", "=1+2"],
    ["2", "58.50", "0", "1900-01-01", "2024-02-29", "2024-01-01T00:00:00",
     "1900-01-01T00:00:00", "{winter}", "12:34:56.789", "-3"],
    ["3", "", "", "", "", "", "", "", "", "@SUM(A1)"],
]  # fmt: skip


@pytest.fixture(scope="module")
def my(mysql_url: URL) -> Any:
    url = mysql_url.update_query_dict({"charset": "utf8mb4"})
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in MY_SETUP:
            conn.exec_driver_sql(statement)
    yield Datasource("my", url), engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tricky")
    engine.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize("zone", sorted(ZONED))
def test_mariadb_csv_keeps_the_servers_values(my: Any, tmp_path: Path, zone: str) -> None:
    summer, winter, _ = ZONED[zone]
    expected = [[c.format(summer=summer, winter=winter) for c in row] for row in MY_CSV]
    assert read_csv(run(my, tmp_path, ExportSpec(statement=QUERY), timezone=zone).path) == expected


@pytest.mark.mysql
def test_mariadb_xlsx_keeps_scales_and_zones_and_texts_what_excel_cannot_hold(
    my: Any, tmp_path: Path
) -> None:
    spec = ExportSpec(statement=QUERY, type=ExportType.EXCEL)
    ws = openpyxl.load_workbook(run(my, tmp_path, spec, timezone="America/New_York").path)["result"]
    header = [c.value for c in ws[1]]
    row1 = dict(zip(header, ws[2], strict=True))
    row2 = dict(zip(header, ws[3], strict=True))
    assert (row1["n2"].value, row1["n2"].number_format) == (199, "0.00")
    assert (row2["n2"].value, row2["n2"].number_format) == (58.5, "0.00")
    assert row1["n0"].value == "12345678901234567890"
    assert row1["d_first"].value == "0001-01-01"
    assert row1["d_last"].value == datetime(9999, 12, 31)
    assert row1["dt_last"].value == "9999-12-31T23:59:59.999999"
    assert row1["dt_old"].value == "1899-12-31T12:00:00"
    assert row1["ts"].value == datetime(2024, 6, 30, 12, 30)  # New York's summer wall time
    assert row1["ts"].number_format == 'yyyy-mm-dd hh:mm:ss"-04:00"'
    assert row2["ts"].value == datetime(2024, 1, 15, 7, 0)
    assert row2["ts"].number_format == 'yyyy-mm-dd hh:mm:ss"-05:00"'
    assert row1["t"].value == "-838:59:59"  # a negative duration: the server's text
    assert row1["f"].value == "=1+2" and row1["f"].data_type == "s"
    assert isinstance(row2["d_first"].value, datetime) and row2["d_first"].value.date() == date(
        1900, 1, 1
    )


@pytest.mark.mysql
def test_mariadb_formula_escaping_and_bom(my: Any, tmp_path: Path) -> None:
    spec = ExportSpec(statement="SELECT f, n2 - 100 AS n FROM tricky ORDER BY id",
                      encoding=Encoding.UTF8_BOM)  # fmt: skip
    result = run(my, tmp_path, spec, escape_formulas=True)
    data = result.path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbff,n\r\n")
    assert list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))) == [
        ["f", "n"],
        ["'=1+2", "99.00"],
        ["'-3", "-41.50"],
        ["'@SUM(A1)", ""],
    ]
