"""Generated values through MariaDB's LOAD DATA LOCAL stream, read back from a real table:
text of every kind (the stream's own terminators and escapes, NULs, CR/LF, astral
characters, long values), numbers and dates at their column's bounds, with and without
NO_BACKSLASH_ESCAPES in the session; exactly the rows written, nothing more."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymysql.constants import CLIENT
from sqlalchemy.engine import URL

from service.datasources import offer_local_infile
from service.domain.model import ImportMode
from service.load import LoadError, LoadTarget, load_rows

pytestmark = pytest.mark.mysql

COLUMNS = ("id", "note", "amount", "day", "moment", "big", "ubig")
DDL = (
    "CREATE TABLE {t} (id int PRIMARY KEY, note longtext, amount decimal(65,30), day date, "
    "moment datetime(6), big bigint, ubig bigint unsigned) CHARACTER SET utf8mb4"
)

# What a LOAD DATA field could misread: its terminators, escapes and NULL marker, alone and
# side by side, and characters UTF-8 encodes in one to four bytes.
STREAM_SPECIALS = ["\t", "\n", "\r", "\r\n", "\\", "\\N", "N", "NULL", "\x00", "\\0", "\x1a"]
STREAM_SPECIALS += ["\\" + c for c in "\t\nr0NZbtn'\"\\%_"]
TEXT = st.one_of(
    st.lists(
        st.sampled_from([*STREAM_SPECIALS, "a", " ", "é", "中", "😀", "\U0010fffd"]), max_size=12
    ).map("".join),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from(["\\" * 1_000 + "x" * 70_000, "😀\t" * 40_000]),  # past a stream packet
)
AMOUNT = st.one_of(
    st.decimals(
        min_value=Decimal("-" + "9" * 35 + "." + "9" * 30),
        max_value=Decimal("9" * 35 + "." + "9" * 30),
        places=30,
        allow_nan=False,
        allow_infinity=False,
    ),
    st.sampled_from([Decimal("-0"), Decimal("1E+34"), Decimal("1E-30"), Decimal("0E-30")]),
)
DAY = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
MOMENT = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))
ROW_VALUES = st.tuples(
    st.none() | TEXT,
    st.none() | AMOUNT,
    st.none() | DAY,
    st.none() | MOMENT,
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.integers(0, 2**64 - 1),
)


@pytest.fixture(scope="module", params=["backslash escapes", "NO_BACKSLASH_ESCAPES"])
def writer(request: pytest.FixtureRequest, mysql_url: URL) -> Iterator[sa.Engine]:
    engine = sa.create_engine(mysql_url)
    offer_local_infile(engine)
    if request.param == "NO_BACKSLASH_ESCAPES":
        sa.event.listen(
            engine,
            "connect",
            lambda conn, _record: conn.query(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
            ),
        )
    with engine.connect() as conn:  # else the rows would go in INSERTs, not the stream
        assert conn.connection.driver_connection.client_flag & CLIENT.LOCAL_FILES
        assert str(conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar()) in ("1", "ON")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def table(writer: sa.Engine) -> Iterator[str]:
    name = f"t_stream_{secrets.token_hex(4)}"
    with writer.begin() as conn:
        conn.exec_driver_sql(DDL.format(t=name))
    yield name
    with writer.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {name}")


def read_back(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id")
        ]


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(ROW_VALUES, min_size=1, max_size=6))
def test_every_generated_row_comes_back_as_it_was_written(
    writer: sa.Engine, table: str, values: list[tuple]
) -> None:
    rows = [(i, *v) for i, v in enumerate(values)]
    with writer.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {table}")
    for mode in (ImportMode.INSERT, ImportMode.SKIP_EXISTING):
        result = load_rows(writer, LoadTarget(table, COLUMNS), rows, mode=mode)
        assert (result.written, result.skipped) == (
            (len(rows), 0) if mode is ImportMode.INSERT else (0, len(rows))
        )
        assert read_back(writer, table) == rows  # decimals compare by value, not by places


def test_a_row_of_one_empty_text_is_a_row(writer: sa.Engine) -> None:
    name = f"t_stream_{secrets.token_hex(4)}"
    with writer.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} (note varchar(10) NOT NULL)")
    try:
        rows = [("",), ("",), ("x",), ("",)]
        assert load_rows(writer, LoadTarget(name, ("note",)), rows).written == 4
        with writer.connect() as conn:
            stored = sorted(r[0] for r in conn.exec_driver_sql(f"SELECT note FROM {name}"))
        assert stored == ["", "", "", "x"]
    finally:
        with writer.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {name}")


@pytest.mark.parametrize(
    "bad",
    [
        ("x" * 11, None, None),  # cut to the column's length
        (None, Decimal("1234.5"), None),  # out of decimal(5,2)'s range
        (None, Decimal("1.005"), None),  # rounded to two places
        (None, None, datetime(2024, 1, 2, 10, 30)),  # its time cut off
        (None, None, "2024-02-30"),  # no such day
        (None, None, "tomorrow"),  # no date at all
    ],
)
def test_a_value_the_server_would_change_fails_the_load_and_leaves_the_table(
    writer: sa.Engine, bad: tuple
) -> None:
    name = f"t_stream_{secrets.token_hex(4)}"
    with writer.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (id int PRIMARY KEY, note varchar(10), "
            "amount decimal(5,2), day date)"
        )
        conn.exec_driver_sql(f"INSERT INTO {name} VALUES (0, 'kept', 1.00, '2024-01-01')")
    try:
        rows = [(1, "fine", Decimal("2.00"), date(2024, 1, 2)), (2, *bad)]
        with pytest.raises(LoadError, match="nothing was written"):
            load_rows(writer, LoadTarget(name, ("id", "note", "amount", "day")), rows)
        with writer.connect() as conn:
            stored = [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {name}")]
        assert stored == [(0, "kept", Decimal("1.00"), date(2024, 1, 1))]
    finally:
        with writer.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {name}")
