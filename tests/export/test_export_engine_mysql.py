"""Exports from a real MariaDB/MySQL: tricky values read back, the read-only wall, the
statement timeout."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from service.datasources import Datasource
from service.domain.model import Content, Encoding, ExportSpec, ExportType, TableOption
from service.export.engine import ExportCanceled, ExportFailed, ExportOptions, export
from service.export.sources import (
    SourceError,
    _mysql_quotes_in_place,
    open_readonly,
    sql_statement,
)
from service.export.writers import CsvWriter

pytestmark = pytest.mark.mysql

NOTE = 'comma, "quote"\r\nnew line'
SETUP = [
    """CREATE TABLE orders (
        id BIGINT PRIMARY KEY, name VARCHAR(50), note TEXT, amount DECIMAL(38,10),
        big BIGINT, day DATE, at DATETIME(6), flag BOOLEAN, doc JSON, raw BLOB, dur TIME
    ) DEFAULT CHARSET utf8mb4""",
    """INSERT INTO orders VALUES
     (1, '中文名', 'comma, "quote"\\r\\nnew line', 12345678901234567890.0123456789,
      9007199254740993, '2024-02-29', '2024-01-02 03:04:05.123456', TRUE,
      '{"k": "值", "n": [1, 2.50]}', x'00ff', '838:59:59'),
     (2, '', NULL, -0.0000000001, -9223372036854775808, NULL, NULL, FALSE, NULL, '', NULL),
     (3, NULL, 'emoji 😀', 0, 0, '1900-01-01', '1999-12-31 23:59:59', NULL, '[]', NULL,
      '-01:00:00')""",
    "CREATE TABLE other (k INT PRIMARY KEY, v VARCHAR(10)) DEFAULT CHARSET utf8mb4",
    "INSERT INTO other VALUES (1, '一'), (2, '二')",
]

EXPECTED = [
    ["id", "name", "note", "amount", "big", "day", "at", "flag", "doc", "raw", "dur"],
    [
        "1", "中文名", NOTE, "12345678901234567890.0123456789", "9007199254740993",
        "2024-02-29", "2024-01-02T03:04:05.123456", "1", '{"k": "值", "n": [1, 2.50]}',
        "\\x00ff", "838:59:59",
    ],
    ["2", "", "", "-0.0000000001", "-9223372036854775808", "", "", "0", "", "\\x", ""],
    [
        "3", "", "emoji 😀", "0.0000000000", "0", "1900-01-01", "1999-12-31T23:59:59", "",
        "[]", "", "-01:00:00",
    ],
]  # fmt: skip


@pytest.fixture(scope="module")
def my(mysql_url: URL) -> tuple[Datasource, sa.Engine]:
    url = mysql_url.update_query_dict({"charset": "utf8mb4"})
    engine = sa.create_engine(url, pool_pre_ping=True)
    with engine.begin() as conn:
        for statement in SETUP:
            conn.exec_driver_sql(statement)
    yield Datasource("my", url), engine
    engine.dispose()


def run(my: tuple[Datasource, sa.Engine], tmp_path: Path, spec: ExportSpec, **kw: object):
    ds, engine = my
    options = kw.pop("options", ExportOptions(fetch_size=2))
    return export(spec, ds, engine, work_dir=tmp_path, basename="my orders", options=options, **kw)


def read_csv(data: bytes, encoding: str = "utf-8") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def test_csv_reads_back_cell_by_cell(my, tmp_path: Path) -> None:
    result = run(my, tmp_path, ExportSpec(tables=(TableOption("orders"),)))
    assert result.filename == "my_orders.csv" and result.rows == 3
    data = result.path.read_bytes()
    assert read_csv(data) == EXPECTED
    assert data.split(b"\r\n")[3].startswith(b'2,"",,')  # row 1 holds a CRLF


def test_csv_with_bom_and_filter(my, tmp_path: Path) -> None:
    spec = ExportSpec(tables=(TableOption("orders", filter="flag = 1 OR id = 3"),))
    result = run(my, tmp_path, spec, options=ExportOptions(csv_bom=True))
    data = result.path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,")
    assert [r[0] for r in read_csv(data[3:])[1:]] == ["1", "3"]


def test_xlsx_reads_back_with_types(my, tmp_path: Path) -> None:
    result = run(my, tmp_path, ExportSpec(statement="SELECT * FROM orders ORDER BY id",
                                          type=ExportType.EXCEL))  # fmt: skip
    wb = openpyxl.load_workbook(result.path)
    assert wb.sheetnames == ["result"]
    rows = list(wb["result"].iter_rows(values_only=True))
    assert list(rows[0]) == EXPECTED[0]
    r1, r2, r3 = rows[1:]
    assert r1[:3] == (1, "中文名", NOTE.replace("\r", "_x000D_"))
    assert r1[3] == "12345678901234567890.0123456789" and r1[4] == "9007199254740993"
    assert r1[5] == datetime(2024, 2, 29)
    assert r1[6] == datetime(2024, 1, 2, 3, 4, 5, 123000)
    assert r1[7] == 1 and r1[8] == '{"k": "值", "n": [1, 2.50]}' and r1[9] == "\\x00ff"
    assert r2[1:3] == ("", None) and r2[4] == "-9223372036854775808"
    assert r3[2] == "emoji 😀" and r3[10] == "-01:00:00"


def test_export_all_makes_zip_with_server_ddl(my, tmp_path: Path) -> None:
    result = run(my, tmp_path, ExportSpec(export_all=True, content=Content.ALL))
    with zipfile.ZipFile(result.path) as zf:
        assert zf.namelist() == ["orders.csv", "other.csv", "schema.sql"]
        assert read_csv(zf.read("other.csv")) == [["k", "v"], ["1", "一"], ["2", "二"]]
        schema = zf.read("schema.sql").decode()
    assert "CREATE TABLE `orders`" in schema and "CREATE TABLE `other`" in schema
    assert result.rows == 5


def test_gbk_round_trips_chinese_and_refuses_emoji(my, tmp_path: Path) -> None:
    ok = run(my, tmp_path, ExportSpec(tables=(TableOption("other"),), encoding=Encoding.GBK))
    assert read_csv(ok.path.read_bytes(), "gbk") == [["k", "v"], ["1", "一"], ["2", "二"]]
    ok.path.unlink()
    with pytest.raises(ExportFailed) as info:
        run(my, tmp_path, ExportSpec(statement="SELECT id, note FROM orders ORDER BY id",
                                     encoding=Encoding.GBK))  # fmt: skip
    assert str(info.value) == (
        "Column `note` has '😀' in row 3 that GBK cannot encode: "
        "choose UTF-8 or remove the character."
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE orders SET name = 'x'",
        "DELETE FROM orders RETURNING id",
        "INSERT INTO other VALUES (99, 'x')",
        "INSERT INTO other SELECT 98, 'y' RETURNING k",
    ],
)
def test_read_only_wall_refuses_writes(my, tmp_path: Path, statement: str) -> None:
    _, engine = my
    query = "SELECT id, name, note, amount FROM orders UNION ALL SELECT k, v, NULL, NULL FROM other"
    with engine.connect() as conn:
        before = conn.exec_driver_sql(query).all()
    # DML never runs: the query check or the READ ONLY transaction refuses it.
    with pytest.raises(ExportFailed, match=r"READ ONLY|Only a query"):
        run(my, tmp_path, ExportSpec(statement=statement))
    with engine.connect() as conn:
        assert conn.exec_driver_sql(query).all() == before
    assert list(tmp_path.iterdir()) == []


def test_statement_timeout_stops_a_long_query(my, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ExportFailed, match="statement timeout of 1 s"):
        run(
            my,
            tmp_path,
            ExportSpec(statement="SELECT SLEEP(60)"),
            options=ExportOptions(statement_timeout_s=1),
        )
    assert time.monotonic() - started < 10
    # the pooled connection is not left with the short timeout
    _, engine = my
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@SESSION.max_statement_time").scalar() == 0
    assert list(tmp_path.iterdir()) == []


def test_struct_of_a_query(my, tmp_path: Path) -> None:
    result = run(
        my,
        tmp_path,
        ExportSpec(statement="SELECT id, amount, note FROM orders", content=Content.STRUCT),
    )
    text = result.path.read_text()
    assert "`id` BIGINT" in text and "`amount` DECIMAL(38,10)" in text and "`note` TEXT" in text


@pytest.mark.parametrize("content", [Content.DATA, Content.STRUCT, Content.ALL])
def test_select_options_run_as_written(my, tmp_path: Path, content: Content) -> None:
    sql = (
        "SELECT STRAIGHT_JOIN HIGH_PRIORITY SQL_NO_CACHE SQL_CALC_FOUND_ROWS o.id, t.v "
        "FROM orders o JOIN other t ON t.k = o.id ORDER BY o.id"
    )
    result = run(my, tmp_path, ExportSpec(statement=sql, content=content))
    if content is Content.DATA:
        assert read_csv(result.path.read_bytes()) == [["id", "v"], ["1", "一"], ["2", "二"]]
    elif content is Content.STRUCT:
        assert "`id` BIGINT" in result.path.read_text()
    else:
        assert result.rows == 2


ENDLESS = "SELECT seq, CONCAT('row ', seq) AS label FROM seq_1_to_100000000000"


def test_statement_timeout_stops_a_csv_export_while_its_rows_stream(my, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ExportFailed, match="statement timeout of 1 s"):
        run(
            my,
            tmp_path,
            ExportSpec(statement=ENDLESS),
            options=ExportOptions(statement_timeout_s=1),
        )
    assert time.monotonic() - started < 10
    _, engine = my
    with engine.connect() as conn:  # the pool hands out a connection that reads on
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_a_csv_export_while_its_rows_stream(my, tmp_path: Path) -> None:
    ticks = iter(range(1_000_000_000))
    started = time.monotonic()
    with pytest.raises(ExportCanceled):
        run(my, tmp_path, ExportSpec(statement=ENDLESS), cancelled=lambda: next(ticks) >= 3)
    assert time.monotonic() - started < 10
    _, engine = my
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert list(tmp_path.iterdir()) == []


def test_a_row_too_long_for_one_csv_line_fails_naming_it(my, tmp_path: Path) -> None:
    # each value fits the server's max_allowed_packet (16 MiB here), the line does not
    wide = "REPEAT('a', 9000000) AS a, REPEAT('b', 9000000) AS b"
    spec = ExportSpec(statement=f"SELECT 1 AS n, '' AS a, '' AS b UNION ALL SELECT 2, {wide}")
    with pytest.raises(
        ExportFailed, match=r"Row 2 is longer as one CSV line than the server's max_allowed_packet"
    ):
        run(my, tmp_path, spec)
    assert list(tmp_path.iterdir()) == []


# --- CSV rendered by the server ---------------------------------------------------------

TRICKY = [
    "SET SESSION sql_mode = ''",  # zero dates, as old tables hold them
    """CREATE TABLE tricky (
        id INT PRIMARY KEY, s VARCHAR(40), l VARCHAR(40) CHARACTER SET latin1, t TEXT,
        vb VARBINARY(8), bl BLOB, bn BINARY(3), d DATE, dt0 DATETIME, dt3 DATETIME(3),
        ts6 DATETIME(6) NULL, tm0 TIME, tm6 TIME(6), dc DECIMAL(5,2), dw DECIMAL(65,30),
        ub BIGINT UNSIGNED, b BOOLEAN, y YEAR, j JSON, e ENUM('a','b,c'), st SET('x','y'),
        g POINT
    ) DEFAULT CHARSET utf8mb4""",
    """INSERT INTO tricky VALUES
     (1, '   ', 'café', 'tab\there, back\\\\slash', x'00ff', x'', x'616263', '2024-02-29',
      '2024-01-02 03:04:05', '2024-01-02 03:04:05.100', '2024-01-02 03:04:05.000001',
      '838:59:59', '-00:00:00.500000', -1.50, 0.000000000000000000000000000001,
      18446744073709551615, TRUE, 2024, '{"a": "\\\\"b\\\\""}', 'b,c', 'x,y', POINT(1, 2)),
     (2, '', NULL, 'a "quoted" word', NULL, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00',
      '2024-01-02 03:04:05.000', NULL, '00:00:00', '12:00:00.000000', 0, -1, 0, FALSE,
      NULL, 'null', 'a', '', NULL),
     (3, 'line\r\nbreak', 'x', '\\\\.', NULL, NULL, NULL, '1000-01-01',
      '9999-12-31 23:59:59', NULL, '1970-01-01 00:00:01.5', '-838:59:59', NULL, 999.99,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    "CREATE TABLE stamps (t TIMESTAMP(3) NULL)",
    "INSERT INTO stamps VALUES ('2024-06-30 16:30:00.250')",
    "CREATE TABLE bits (b BIT(3))",
    "INSERT INTO bits VALUES (b'101')",
    """CREATE TABLE mixed (a VARCHAR(9) COLLATE utf8mb4_general_ci,
                           b VARCHAR(9) COLLATE utf8mb4_unicode_ci, c VARCHAR(9) CHARSET latin1)""",
    "INSERT INTO mixed VALUES ('甲,乙', 'ü', 'né'), (NULL, '', 'x\"y')",
    "CREATE TABLE wide (u VARCHAR(9) CHARSET utf16, n INT)",
    "INSERT INTO wide VALUES ('ü,𝄞', 1), ('', NULL)",
    "CREATE TABLE legacy (l VARCHAR(9) CHARSET latin1, g VARCHAR(9) CHARSET gbk)",
    "INSERT INTO legacy VALUES ('é', '中')",
]


@pytest.fixture
def tricky(my: tuple[Datasource, sa.Engine]) -> Iterator[tuple[Datasource, sa.Engine]]:
    """The tables above for one test, dropped after it (export_all lists every table)."""
    _, engine = my
    with engine.begin() as conn:
        for statement in TRICKY:
            conn.exec_driver_sql(statement)
    yield my
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS tricky, stamps, bits, mixed, legacy, wide")


def both_paths(my: tuple[Datasource, sa.Engine], sql: str) -> tuple[bytes, bytes, int | None]:
    """The query's CSV records as the server renders them, and as the row path writes them."""
    _, engine = my
    stmt = sql_statement(sql, None, "mysql")
    with open_readonly(engine, "mysql", 30) as session:
        rendered = io.BytesIO()
        rows = session.server_csv(stmt, lambda cols: None, rendered.write, lambda n: None)
        stream = session.stream(stmt)
        by_rows = io.BytesIO()
        writer = CsvWriter(by_rows)
        writer.header([c.name for c in stream.columns])
        by_rows.seek(0)
        by_rows.truncate()  # records only, as the server renders them
        for batch in stream.batches(2):
            writer.write_rows(batch)
        stream.close()
    return rendered.getvalue(), by_rows.getvalue(), rows


def test_server_rendered_csv_is_the_row_paths_csv_byte_for_byte(tricky) -> None:
    rendered, by_rows, rows = both_paths(tricky, "SELECT * FROM tricky ORDER BY id")
    assert rows == 3  # rendered by the server, not handed back to the row path
    assert rendered == by_rows
    assert rendered.split(b"\r\n")[0].startswith(
        b'1,   ,caf\xc3\xa9,"tab\there, back\\slash",\\x00ff,\\x,'
    )
    assert b",0000-00-00,0000-00-00 00:00:00,2024-01-02T03:04:05," in rendered
    assert b",-00:00:00.5,-1.50,0.000000000000000000000000000001,18446744073709551615," in rendered


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT t FROM tricky ORDER BY t",  # alone on its line: `\.` is quoted
        "SELECT s, s AS `odd ``name`` , too`, DATE_FORMAT(d, '%Y') FROM tricky ORDER BY s",
        "SELECT CAST(NULL AS CHAR) AS n, 1 + 1, NOW(6) - NOW(6) AS zero FROM tricky",
        "SELECT * FROM tricky WHERE id > 99",
        "SELECT c, c AS d FROM mixed",  # only latin1 text: converted a cell at a time
        "SELECT a, c FROM mixed",
        "SELECT a, b, c FROM mixed",  # two collations of one charset, and latin1
        "SELECT u, u AS v FROM wide",  # Unicode but not UTF-8
        "SELECT l, g FROM legacy",  # two non-Unicode charsets in one line
        # The quote mark's byte, 0xFE, asked for as text: the server makes it `?` or `þ`.
        "SELECT CAST(0xFE AS CHAR CHARACTER SET utf8mb4) AS a, CONVERT(0x22FE2C USING utf8mb4)"
        " AS b, CONVERT(0xFE USING latin1) AS c, CAST(0xFEFE AS CHAR) AS d FROM tricky",
    ],
)
def test_server_rendered_csv_matches_on_odd_shapes(tricky, sql: str) -> None:
    rendered, by_rows, rows = both_paths(tricky, sql)
    assert rows is not None and rendered == by_rows


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1.5e300 AS f, CAST(0.1 AS FLOAT) AS g",  # Python's float layout: row path
        "SELECT b FROM bits",
        "SELECT t FROM stamps",  # TIMESTAMP is shown in the task's timezone
        "SELECT id, id FROM tricky",  # two columns of one name cannot be wrapped
    ],
)
def test_types_without_a_sql_rendering_take_the_row_path(tricky, sql: str) -> None:
    _, by_rows, rows = both_paths(tricky, sql)
    assert rows is None and by_rows


def test_marked_cells_are_quoted_and_their_quotes_doubled_on_the_client() -> None:
    lines = b'1,\xfea "b", c\xfe,\xfe\xfe,plain\r\n2,,\xfe\r\n\xfe\r\n'
    assert _mysql_quotes_in_place(lines, 0, 2) == b'1,"a ""b"", c","",plain\r\n2,,"\r\n"\r\n'
    assert _mysql_quotes_in_place(b"1,plain,,2.5\r\n", 0, 1) == b"1,plain,,2.5\r\n"


def test_a_mark_without_its_pair_refuses_the_lines_instead_of_losing_a_cells_bounds() -> None:
    with pytest.raises(SourceError, match="rows 1,001 to 1,500 is not valid"):
        _mysql_quotes_in_place(b"1,\xfea\xfe\xfe\r\n", 1000, 500)


def test_a_query_the_server_cannot_render_is_exported_by_rows_with_one_header(
    tricky, tmp_path: Path
) -> None:
    statement = "SELECT l, g, 0.5e0 AS f FROM legacy"  # a DOUBLE has no SQL rendering
    result = run(tricky, tmp_path, ExportSpec(statement=statement))
    assert read_csv(result.path.read_bytes()) == [["l", "g", "f"], ["é", "中", "0.5"]]


# --- hostile values: the socket reader against the row path -----------------------------


@pytest.fixture
def hostile(my: tuple[Datasource, sa.Engine]) -> Iterator[tuple[Datasource, sa.Engine]]:
    """Every byte alone and all together in a BLOB, as latin1 text and as the code points
    U+0000..U+00FF in UTF-8 text, and NULLs."""
    _, engine = my
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE hostile (id INT PRIMARY KEY, bl BLOB, l TEXT CHARACTER SET latin1, "
            "u TEXT CHARACTER SET utf8mb4)"
        )
    try:
        values = [bytes([b]) for b in range(256)] + [bytes(range(256)), None, b""]
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO hostile VALUES (:id, :bl, CONVERT(:bl USING latin1), :u)"),
                [
                    {"id": i, "bl": v, "u": None if v is None else v.decode("latin1")[::-1]}
                    for i, v in enumerate(values)
                ],
            )
        yield my
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE hostile")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM hostile ORDER BY id",
        "SELECT bl FROM hostile ORDER BY bl",  # lines of one value: many under 251 bytes
        "SELECT id, u, l FROM hostile ORDER BY id DESC",
    ],
)
def test_every_byte_in_blobs_and_text_reads_as_the_row_path_writes_it(hostile, sql: str) -> None:
    rendered, by_rows, rows = both_paths(hostile, sql)
    assert rows == 259
    assert rendered == by_rows


def test_many_tiny_lines_and_nulls_read_as_the_row_path_writes_them(my) -> None:
    # Lines of 0, 1 and 2 bytes by the hundred thousand: most socket reads end mid-packet.
    sql = (
        "SELECT CASE seq % 4 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'a' "
        "ELSE CHAR(seq % 256 USING latin1) END AS v FROM seq_1_to_120000"
    )
    rendered, by_rows, rows = both_paths(my, sql)
    assert rows == 120_000
    assert rendered == by_rows


@pytest.mark.parametrize(
    "length",
    [
        0xFFFFFF - 5,
        0xFFFFFF - 4,  # its packet is exactly 0xFFFFFF bytes: an empty packet follows
        0xFFFFFF - 3,  # the packet's last byte goes on into the next one
    ],
)
def test_a_line_at_the_packet_boundary_reads_as_the_row_path_writes_it(my, length: int) -> None:
    sql = f"SELECT 'x' AS v UNION ALL SELECT REPEAT('a', {length}) UNION ALL SELECT 'y'"
    rendered, by_rows, rows = both_paths(my, sql)
    assert rows == 3
    assert len(rendered) == length + 8 and rendered == by_rows


@pytest.mark.parametrize(
    ("sql", "by_server"),
    [
        ("SELECT seq AS n FROM seq_1_to_2000 ORDER BY n DESC", True),
        ("SELECT MOD(seq, 7) AS r, seq AS n FROM seq_1_to_2000 ORDER BY 1, `N` DESC", True),
        ("SELECT seq AS n FROM seq_1_to_2000 ORDER BY n DESC LIMIT 5", True),
        ("SELECT 1 AS n UNION ALL SELECT 3 UNION ALL SELECT 2 ORDER BY n DESC", True),
        ("SELECT seq AS n FROM seq_1_to_2000 ORDER BY MOD(seq, 7), seq DESC", False),  # expression
        ("SELECT MOD(seq, 7) AS r FROM seq_1_to_2000 ORDER BY seq DESC", False),  # not a column
    ],
)
def test_csv_keeps_the_order_the_query_asks_for(my, tmp_path: Path, sql: str, by_server) -> None:
    # MariaDB drops an ORDER BY inside a derived table, as the server's rendering wraps it.
    _, engine = my
    with engine.connect() as conn:
        expected = [[str(v) for v in row] for row in conn.exec_driver_sql(sql)]
    rendered, by_rows, rows = both_paths(my, sql)
    assert (rows is not None) == by_server
    if by_server:
        assert rendered == by_rows
    result = run(my, tmp_path, ExportSpec(statement=sql))
    assert read_csv(result.path.read_bytes())[1:] == expected
