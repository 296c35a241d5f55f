"""Values of a one-column result read in bulk off PyMySQL's connection, on a real MariaDB:
every length the protocol encodes differently, the server's errors mid-result, a reader
that stops early."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pymysql
import pymysql.cursors
import pytest
from sqlalchemy.engine import URL

from service.export.mysql_wire import NullValue, single_values

pytestmark = pytest.mark.mysql


@pytest.fixture
def conn(mysql_url: URL) -> Iterator[pymysql.Connection]:
    c = pymysql.connect(
        host=mysql_url.host, port=mysql_url.port or 3306, user=mysql_url.username,
        password=mysql_url.password or "", database=mysql_url.database, charset="utf8mb4",
    )  # fmt: skip
    yield c
    with contextlib.suppress(Exception):
        c.close()


def read_all(conn: pymysql.Connection, sql: str) -> list[bytes]:
    cur = conn.cursor(pymysql.cursors.SSCursor)
    try:
        cur.execute(sql)
        with contextlib.closing(single_values(cur)) as batches:
            return [v for batch in batches for v in batch]
    finally:
        cur.close()


def driver_reads(conn: pymysql.Connection, sql: str) -> list[bytes]:
    cur = conn.cursor(pymysql.cursors.SSCursor)
    try:
        cur.execute(sql)
        return [row[0] for row in cur.fetchall()]
    finally:
        cur.close()


@pytest.mark.parametrize(
    "length",
    [
        0,
        250,  # the last length told in one byte
        251,
        65_536,  # past a two-byte length
        16_777_000,  # an eight-byte length in one packet
        16_777_216,  # the server's max_allowed_packet: the row spans two packets
    ],
)
def test_a_value_of_any_length_comes_back_as_the_driver_reads_it(conn, length: int) -> None:
    sql = (
        f"SELECT CAST(REPEAT('a', {length}) AS BINARY) UNION ALL SELECT 'x' "
        f"UNION ALL SELECT CAST(REPEAT('b', {length}) AS BINARY)"
    )
    values = read_all(conn, sql)
    assert [len(v) for v in values] == [length, 1, length]
    assert values == driver_reads(conn, sql)
    assert read_all(conn, "SELECT 'next'") == [b"next"]  # the connection reads on


def test_many_rows_come_in_order_over_several_socket_reads(conn) -> None:
    sql = "SELECT CAST(CONCAT('row ', seq) AS BINARY) FROM seq_1_to_200000"
    values = read_all(conn, sql)
    assert values == [f"row {n}".encode() for n in range(1, 200_001)]


def test_the_servers_error_midway_is_raised_as_the_driver_raises_it(conn, mysql_url) -> None:
    cur = conn.cursor(pymysql.cursors.SSCursor)
    cur.execute("SELECT CAST(seq AS BINARY) FROM seq_1_to_100000000000")
    batches = single_values(cur)
    assert next(batches)  # rows are streaming
    other = pymysql.connect(host=mysql_url.host, port=mysql_url.port or 3306, user=mysql_url.username,
                            password=mysql_url.password or "")  # fmt: skip
    with other.cursor() as c:
        c.execute(f"KILL QUERY {conn.thread_id()}")
    other.close()
    with pytest.raises(pymysql.err.OperationalError) as info:
        for _ in batches:
            pass
    assert info.value.args[0] == 1317  # query execution was interrupted
    cur.close()
    assert read_all(conn, "SELECT 'next'") == [b"next"]


def test_a_reader_stopped_early_closes_the_connection_without_draining_it(conn) -> None:
    cur = conn.cursor(pymysql.cursors.SSCursor)
    cur.execute("SELECT CAST(seq AS BINARY) FROM seq_1_to_100000000000")
    batches = single_values(cur)
    assert next(batches)
    done = threading.Event()

    def close() -> None:
        batches.close()
        cur.close()  # would read a hundred billion rows if the result were left open
        done.set()

    threading.Thread(target=close, daemon=True).start()
    assert done.wait(10)
    assert not conn.open


def test_a_null_value_is_told_apart_with_the_values_before_it(conn) -> None:
    with pytest.raises(NullValue) as info:
        read_all(conn, "SELECT IF(seq = 3, NULL, CAST(seq AS BINARY)) FROM seq_1_to_5")
    assert info.value.before == 2
