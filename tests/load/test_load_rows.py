"""The write path on a real PostgreSQL and MariaDB, as a writer user that may only SELECT,
INSERT and UPDATE its table: each mode's counts, all-or-nothing on a duplicate key and on a
cancel, the UPSERT backup, odd values, one column and three hundred."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from db_users import db_user
from sqlalchemy.engine import URL

from service.domain.model import ImportMode
from service.load import LoadCanceled, LoadError, LoadTarget, conflict_key, load_rows

DDL = {
    "postgresql": (
        "CREATE TABLE {t} (code varchar(20) PRIMARY KEY, discount numeric(5,2) NOT NULL, "
        "valid_until date, note text, created_at timestamp)"
    ),
    "mysql": (
        "CREATE TABLE {t} (code varchar(20) PRIMARY KEY, discount decimal(5,2) NOT NULL, "
        "valid_until date, note text, created_at datetime(6))"
    ),
}
COLUMNS = ("code", "discount", "valid_until", "note", "created_at")
ODD = 'comma, "quote"\r\nnew line 中文 😀'


@dataclass
class Db:
    backend: str
    admin: sa.Engine
    admin_url: URL

    @contextmanager
    def table(self, ddl: str = "", *, privileges: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE")):
        """A new table and a writer that may touch only it; (name, writer engine)."""
        name = f"t_{secrets.token_hex(4)}"
        with self.admin.begin() as conn:
            conn.exec_driver_sql((ddl or DDL[self.backend]).format(t=name))
        try:
            with db_user(self.admin_url, tables=[name], privileges=privileges) as user:
                engine = user.engine()
                try:
                    yield name, engine
                finally:
                    engine.dispose()
        finally:
            with self.admin.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE {name}")

    def rows(self, table: str, order: str = "code") -> list[tuple]:
        with self.admin.connect() as conn:
            return [
                tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")
            ]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    url: URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    admin = sa.create_engine(url)
    yield Db(request.param, admin, url)
    admin.dispose()


def seed(db: Db, table: str, rows: list[tuple]) -> None:
    with db.admin.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO {table} VALUES (:a, :b, :c, :d, :e)"),
            [dict(zip("abcde", r, strict=True)) for r in rows],
        )


EXISTING = [
    ("A1", Decimal("10.00"), date(2030, 1, 1), "old a1", datetime(2024, 1, 1, 8, 0)),
    ("A2", Decimal("20.00"), None, None, None),
]
INCOMING = [
    ("A2", Decimal("25.50"), date(2031, 6, 30), ODD, datetime(2025, 2, 3, 4, 5, 6, 789000)),
    ("B1", Decimal("5.00"), None, "", None),
    ("B2", Decimal("0.01"), date(1999, 12, 31), None, datetime(2000, 1, 1)),
]


def test_insert_writes_every_row_with_its_values(db: Db) -> None:
    with db.table() as (table, writer):
        result = load_rows(writer, LoadTarget(table, COLUMNS), iter(INCOMING))
        assert (result.written, result.skipped, result.updated) == (3, 0, 0)
        assert db.rows(table) == INCOMING


def test_insert_with_an_existing_key_fails_and_leaves_the_table_unchanged(db: Db) -> None:
    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        with pytest.raises(LoadError, match="nothing was written") as err:
            load_rows(writer, LoadTarget(table, COLUMNS), iter(INCOMING))
        assert "A2" in str(err.value) or "Duplicate" in str(err.value)
        assert db.rows(table) == EXISTING


def test_skip_existing_leaves_existing_rows_alone_and_counts_them(db: Db) -> None:
    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        result = load_rows(
            writer, LoadTarget(table, COLUMNS), INCOMING, mode=ImportMode.SKIP_EXISTING
        )
        assert (result.written, result.skipped, result.updated) == (2, 1, 0)
        assert db.rows(table) == [EXISTING[0], EXISTING[1], INCOMING[1], INCOMING[2]]


class Backups:
    """A backup opener that keeps what each closed (published) backup held."""

    def __init__(self) -> None:
        self.published: list[bytes] = []

    @contextmanager
    def __call__(self) -> Iterator[io.BytesIO]:
        out = io.BytesIO()
        yield out
        self.published.append(out.getvalue())


def test_upsert_updates_existing_rows_after_saving_them(db: Db) -> None:
    backup = Backups()
    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        result = load_rows(
            writer, LoadTarget(table, COLUMNS), INCOMING, mode=ImportMode.UPSERT, backup=backup
        )
        assert (result.written, result.skipped, result.updated) == (2, 0, 1)
        assert db.rows(table) == [EXISTING[0], INCOMING[0], INCOMING[1], INCOMING[2]]
    lines = list(csv.reader(io.StringIO(backup.published[0].decode(), newline="")))
    assert lines[0] == list(COLUMNS)
    assert [line[:2] for line in lines[1:]] == [["A2", "20.00"]]


def test_upsert_with_nothing_to_replace_publishes_a_backup_of_only_the_header(db: Db) -> None:
    backup = Backups()
    with db.table() as (table, writer):
        result = load_rows(
            writer, LoadTarget(table, COLUMNS), INCOMING, mode=ImportMode.UPSERT, backup=backup
        )
        assert (result.written, result.updated) == (3, 0)
    assert backup.published[0].decode().strip().split(",") == list(COLUMNS)


def test_a_failing_upsert_does_not_publish_its_backup(db: Db) -> None:
    backup = Backups()
    bad = [*INCOMING, ("C1", None, None, None, None)]  # NOT NULL discount
    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        with pytest.raises(LoadError):
            load_rows(
                writer, LoadTarget(table, COLUMNS), bad, mode=ImportMode.UPSERT, backup=backup
            )
        assert db.rows(table) == EXISTING
    assert backup.published == []


def test_cancel_mid_load_leaves_the_table_unchanged(db: Db) -> None:
    produced = 0

    def rows() -> Iterator[tuple]:
        nonlocal produced
        for i in range(50_000):
            produced += 1
            yield (f"K{i}", Decimal("1.00"), None, None, None)

    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        with pytest.raises(LoadCanceled):
            load_rows(
                writer, LoadTarget(table, COLUMNS), rows(), cancelled=lambda: produced > 15_000
            )
        assert db.rows(table) == EXISTING
    assert produced < 50_000


def test_progress_is_reported_while_rows_stream(db: Db) -> None:
    seen: list[int] = []
    rows = ((f"K{i:05}", Decimal("1.00"), None, None, None) for i in range(25_000))
    with db.table() as (table, writer):
        result = load_rows(writer, LoadTarget(table, COLUMNS), rows, progress=seen.append)
    assert result.written == 25_000
    assert seen[:2] == [10_000, 20_000]


def test_a_writer_without_update_privilege_cannot_upsert_and_writes_nothing(db: Db) -> None:
    with db.table(privileges=("SELECT", "INSERT")) as (table, writer):
        seed(db, table, EXISTING)
        with pytest.raises(LoadError, match="refused"):
            load_rows(writer, LoadTarget(table, COLUMNS), INCOMING, mode=ImportMode.UPSERT)
        assert db.rows(table) == EXISTING


def test_skip_and_upsert_need_a_key_among_the_columns_written(db: Db) -> None:
    with db.table() as (table, writer):
        with pytest.raises(LoadError, match="no primary key or unique key"):
            load_rows(
                writer,
                LoadTarget(table, ("discount", "note")),
                [(Decimal(1), "x")],
                mode=ImportMode.UPSERT,
            )
        assert conflict_key(writer, "", table, COLUMNS) == ("code",)


def test_one_column_table(db: Db) -> None:
    with db.table("CREATE TABLE {t} (code varchar(10) PRIMARY KEY)") as (table, writer):
        result = load_rows(
            writer,
            LoadTarget(table, ("code",)),
            [("x",), ("",), ("\\.",)],
            mode=ImportMode.SKIP_EXISTING,
        )
        assert result.written == 3
        assert sorted(db.rows(table)) == [("",), ("\\.",), ("x",)]


def test_three_hundred_columns(db: Db) -> None:
    cols = [f"c{i:03}" for i in range(300)]
    ddl = "CREATE TABLE {t} (id int PRIMARY KEY, " + ", ".join(f"{c} int" for c in cols) + ")"
    rows = [(r, *(r * 1000 + i for i in range(300))) for r in range(200)]
    with db.table(ddl) as (table, writer):
        result = load_rows(writer, LoadTarget(table, ("id", *cols)), rows, mode=ImportMode.UPSERT)
        assert result.written == 200
        again = load_rows(
            writer, LoadTarget(table, ("id", *cols)), rows[:50], mode=ImportMode.UPSERT
        )
        assert (again.written, again.updated) == (0, 50)
        assert db.rows(table, "id") == rows


# -- text that a bulk format must escape ----------------------------------------------------

TRICKY_TEXT = [
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\",
    "NULL",
    "",
    "ends with a backslash\\",
    "\\t not a tab",
    'quote " and comma ,',
    "中文 😀",
]


def test_text_that_bulk_formats_escape_arrives_as_it_was_and_null_stays_apart_from_empty(
    db: Db,
) -> None:
    rows = [(f"K{i:02}", Decimal("1.00"), None, text, None) for i, text in enumerate(TRICKY_TEXT)]
    rows.append(("KNULL", Decimal("1.00"), None, None, None))
    for mode in (ImportMode.INSERT, ImportMode.SKIP_EXISTING):
        with db.table() as (table, writer):
            result = load_rows(writer, LoadTarget(table, COLUMNS), rows, mode=mode)
            assert result.written == len(rows)
            assert db.rows(table) == sorted(rows)


@pytest.mark.mysql
def test_mysql_loads_the_same_text_when_the_server_reads_no_backslash_escapes(
    mysql_url: URL,
) -> None:
    db = Db("mysql", sa.create_engine(mysql_url), mysql_url)
    rows = [(f"K{i:02}", Decimal("1.00"), None, text, None) for i, text in enumerate(TRICKY_TEXT)]
    try:
        with db.table() as (table, writer):
            sa.event.listen(
                writer,
                "connect",
                lambda conn, _record: conn.query(
                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
                ),
            )
            assert load_rows(writer, LoadTarget(table, COLUMNS), rows).written == len(rows)
            assert db.rows(table) == sorted(rows)
    finally:
        db.admin.dispose()


def test_insert_fails_on_a_value_the_database_only_warns_about(db: Db) -> None:
    # Values come converted, so the database should never have to cut one; if it does, the
    # load fails rather than keep a changed value.
    too_long = [
        ("A9", Decimal("1.00"), None, None, None),
        ("X" * 30, Decimal("1.00"), None, None, None),
    ]
    with db.table() as (table, writer):
        seed(db, table, EXISTING)
        for mode in (ImportMode.INSERT, ImportMode.SKIP_EXISTING):
            with pytest.raises(LoadError, match="nothing was written"):
                load_rows(writer, LoadTarget(table, COLUMNS), too_long, mode=mode)
        assert db.rows(table) == EXISTING


@pytest.mark.mysql
def test_mysql_without_local_infile_inserts_in_batches(mysql_url: URL) -> None:
    db = Db("mysql", sa.create_engine(mysql_url), mysql_url)
    try:
        with db.table() as (table, _writer):
            plain = sa.create_engine(mysql_url)  # not offered LOAD DATA LOCAL
            try:
                result = load_rows(plain, LoadTarget(table, COLUMNS), iter(INCOMING))
            finally:
                plain.dispose()
            assert result.written == 3
            assert db.rows(table) == INCOMING
    finally:
        db.admin.dispose()


@pytest.mark.mysql
def test_mysql_server_asking_for_a_file_gets_no_file(mysql_url: URL, tmp_path) -> None:
    """A server may answer any statement with a request for a local file of its choosing;
    the driver refuses it, and the load answers only the request naming its own rows."""
    from service.load.writer import _StreamedLoad

    secret = tmp_path / "secret.txt"
    secret.write_text("S1\t1.00\n")
    db = Db("mysql", sa.create_engine(mysql_url), mysql_url)
    try:
        with db.table() as (table, writer):
            request = f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE {table} (code, discount)"
            with writer.connect() as conn:
                raw = conn.connection.driver_connection
                with pytest.raises(Exception, match="local_infile"):
                    raw.cursor().execute(request)
                conn.invalidate()
            with writer.connect() as conn:
                raw = conn.connection.driver_connection
                raw._execute_command(3, request.encode())  # COM_QUERY
                streamed = _StreamedLoad(raw, "our-rows", iter([b"R1\t2.00\n"]))
                with pytest.raises(LoadError, match="asked for a file other than"):
                    streamed.read()
                conn.rollback()
            assert db.rows(table) == []
    finally:
        db.admin.dispose()


def test_skip_existing_tells_many_skipped_keys_from_one_other_problem(db: Db) -> None:
    # The server lists only its first warnings: the count, not the list, decides.
    existing = [(f"E{i:03}", Decimal("1.00"), None, None, None) for i in range(100)]
    with db.table() as (table, writer):
        seed(db, table, existing)
        result = load_rows(
            writer, LoadTarget(table, COLUMNS), existing, mode=ImportMode.SKIP_EXISTING
        )
        assert (result.written, result.skipped) == (0, 100)
        too_long = ("X" * 30, Decimal("1.00"), None, None, None)
        with pytest.raises(LoadError, match="nothing was written"):
            load_rows(
                writer,
                LoadTarget(table, COLUMNS),
                [*existing, too_long],
                mode=ImportMode.SKIP_EXISTING,
            )
        assert db.rows(table) == existing
