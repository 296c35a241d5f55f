"""Checked filters compiled to SQLAlchemy: columns are the table's, every value a parameter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
import sqlglot
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Engine

from service.domain.filters import CAST_TYPES, InvalidFilter, parse_filter
from service.export.filter_sql import compile_filter

HOSTILE = "x' OR 1=1 --"

ROWS = [
    {"id": 1, "name": HOSTILE, "amount": Decimal("1.50"), "status": "paid",
     "created_at": datetime(2024, 1, 1, 10, 0)},
    {"id": 2, "name": "alice", "amount": Decimal("10.00"), "status": "sent",
     "created_at": datetime(2023, 5, 1)},
    {"id": 3, "name": None, "amount": None, "status": "void", "created_at": None},
    {"id": 4, "name": "Bob", "amount": Decimal("-2.25"), "status": "paid",
     "created_at": datetime(2024, 6, 30, 23, 59, 59)},
    {"id": 5, "name": "50%_off", "amount": Decimal("0"), "status": "sent",
     "created_at": datetime(2024, 2, 29, 12, 0)},
]  # fmt: skip

# (filter, ids it selects) — the same answer on SQLite, PostgreSQL and MySQL
CASES = [
    ("name = 'x'' OR 1=1 --'", [1]),
    ("name = 'x'' OR ''1''=''1'", []),
    ("name = '; DROP TABLE people; --'", []),
    ("name = 'alice' OR id = 3", [2, 3]),
    ("status IN ('paid', 'void')", [1, 3, 4]),
    ("status NOT IN ('paid')", [2, 3, 5]),
    ("amount > 1.25", [1, 2]),
    ("amount < 0", [4]),
    ("amount = -2.25", [4]),
    ("created_at >= '2024-01-01'", [1, 4, 5]),
    ("created_at < DATE '2024-01-01'", [2]),
    ("created_at >= CAST('2024-06-30 12:00:00' AS TIMESTAMP)", [4]),
    ("date(created_at) = '2024-02-29'", [5]),
    ("name IS NULL", [3]),
    ("name IS NOT NULL AND NOT name LIKE 'a%'", [1, 4, 5]),
    ("name NOT LIKE '%b%'", [1, 2, 5]),
    ("lower(name) = 'bob'", [4]),
    ("upper(name) = 'ALICE'", [2]),
    ("name ILIKE 'b%'", [4]),
    ("char_length(name) = 5", [2]),
    ("substr(name, 1, 2) = 'al'", [2]),
    ("trim(name) = 'Bob'", [4]),
    ("coalesce(name, 'none') = 'none'", [3]),
    ("abs(amount) > 2", [2, 4]),
    ("round(amount) = 2", [1]),
    ("id % 2 = 0", [2, 4]),
    ("id * 2 + 1 = 5", [2]),
    ("-id = -3", [3]),
    ("id BETWEEN 2 AND 4", [2, 3, 4]),
    ("id NOT BETWEEN 2 AND 4", [1, 5]),
    ("CAST(id AS VARCHAR(5)) = '4'", [4]),
    ("CAST(amount AS INTEGER) = 10", [2]),
    ("TRUE", [1, 2, 3, 4, 5]),
    ("NOT (id = 1)", [2, 3, 4, 5]),
    ("id = 1 OR id = 2 OR id = 3 AND status = 'paid'", [1, 2]),
    ("(id = 1 OR id = 2 OR id = 3) AND status = 'paid'", [1]),
    ("people.id = 5", [5]),
]


def make_table(metadata: sa.MetaData, name: str = "people") -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50)),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("status", sa.String(10)),
        sa.Column("created_at", sa.DateTime),
    )


def dialect_of(engine: Engine) -> str:
    return {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql"}[engine.dialect.name]


def select_ids(engine: Engine, table: sa.Table, text: str) -> list[int]:
    # Server tables carry a unique name; the filters still say people.id, as a user would.
    columns = [c.name for c in table.c]
    tree = parse_filter(text, columns, dialect_of(engine), "people")
    condition = compile_filter(tree, table)
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(table.c.id).where(condition).order_by(table.c.id)))


@pytest.fixture(scope="module")
def sqlite_people() -> Iterator[tuple[Engine, sa.Table]]:
    engine = sa.create_engine("sqlite://")
    table = make_table(sa.MetaData())
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), ROWS)
    yield engine, table
    engine.dispose()


def _server_people(url: URL) -> Iterator[tuple[Engine, sa.Table]]:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = make_table(metadata, f"people_{uuid.uuid4().hex[:8]}")
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), ROWS)
    try:
        yield engine, table
    finally:
        table.drop(engine)
        engine.dispose()


@pytest.fixture(scope="module")
def pg_people(pg_url: URL) -> Iterator[tuple[Engine, sa.Table]]:
    yield from _server_people(pg_url)


@pytest.fixture(scope="module")
def mysql_people(mysql_url: URL) -> Iterator[tuple[Engine, sa.Table]]:
    yield from _server_people(mysql_url)


@pytest.mark.parametrize(("text", "ids"), CASES)
def test_filter_selects_exactly_the_matching_rows_on_sqlite(
    sqlite_people: tuple[Engine, sa.Table], text: str, ids: list[int]
) -> None:
    engine, table = sqlite_people
    assert select_ids(engine, table, text) == ids


@pytest.mark.postgres
@pytest.mark.parametrize(("text", "ids"), CASES)
def test_filter_selects_exactly_the_matching_rows_on_postgres(
    pg_people: tuple[Engine, sa.Table], text: str, ids: list[int]
) -> None:
    assert select_ids(*pg_people, text) == ids


@pytest.mark.mysql
@pytest.mark.parametrize(("text", "ids"), CASES)
def test_filter_selects_exactly_the_matching_rows_on_mysql(
    mysql_people: tuple[Engine, sa.Table], text: str, ids: list[int]
) -> None:
    assert select_ids(*mysql_people, text) == ids


def test_hostile_filter_leaves_the_table_in_place(sqlite_people: tuple[Engine, sa.Table]) -> None:
    engine, table = sqlite_people
    assert select_ids(engine, table, "name = '''; DROP TABLE people; --'") == []
    assert sa.inspect(engine).has_table("people")


DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgres": postgresql.psycopg.dialect(),
    "mysql": mysql.pymysql.dialect(),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_literals_are_parameters_and_never_part_of_the_sql_text(dialect: str) -> None:
    table = make_table(sa.MetaData())
    quoted = HOSTILE.replace("'", "''")
    text = f"name = '{quoted}' OR amount > 987654.5 OR status IN ('zq1', 'zq2')"
    tree = parse_filter(text, [c.name for c in table.c], dialect, "people")
    compiled = (
        sa.select(table.c.id).where(compile_filter(tree, table)).compile(dialect=DIALECTS[dialect])
    )
    sql = str(compiled)
    for literal in ("1=1", "OR 1", "987654", "zq1", "zq2", "--"):
        assert literal not in sql
    assert sorted(map(str, compiled.params.values())) == sorted([HOSTILE, "987654.5", "zq1", "zq2"])
    assert "people.name" in sql and "people.amount" in sql and "people.status" in sql


def test_negative_number_is_one_parameter() -> None:
    table = make_table(sa.MetaData())
    tree = parse_filter("amount = -2.25", [c.name for c in table.c], "sqlite", "people")
    compiled = compile_filter(tree, table).compile(dialect=DIALECTS["sqlite"])
    assert list(compiled.params.values()) == [Decimal("-2.25")]
    assert "2.25" not in str(compiled)


def test_long_condition_chain_compiles_without_recursing_per_term(
    sqlite_people: tuple[Engine, sa.Table],
) -> None:
    engine, table = sqlite_people
    text = " OR ".join(f"id = {i}" for i in range(100, 400)) + " OR id = 2"
    assert select_ids(engine, table, text) == [2]


def test_numbers_sqlite_cannot_bind_natively_still_compare(
    sqlite_people: tuple[Engine, sa.Table],
) -> None:
    engine, table = sqlite_people
    assert select_ids(engine, table, "amount < 99999999999999999999999") == [1, 2, 4, 5]
    assert select_ids(engine, table, "amount = 10.000") == [2]


@pytest.mark.filterwarnings("ignore:Datatype .* does not support CAST on MySQL")
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("cast", sorted(CAST_TYPES, key=lambda t: t.value))
def test_every_allowed_cast_type_compiles(dialect: str, cast: sqlglot.exp.DataType.Type) -> None:
    table = make_table(sa.MetaData())
    tree = sqlglot.exp.Is(
        this=sqlglot.exp.Cast(
            this=sqlglot.exp.column("name", quoted=True), to=sqlglot.exp.DataType.build(cast)
        ),
        expression=sqlglot.exp.Null(),
    )
    sql = str(compile_filter(tree, table).compile(dialect=DIALECTS[dialect]))
    assert "people.name" in sql


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id = (SELECT 1)", "SUBQUERY"),
        ("sleep(1) = 0", "ANONYMOUS"),
        ("other = 1", "no column 'other'"),
        ("x.id = 1", "qualified"),
        ("id IS TRUE", "IS may only"),
        ("CAST(id AS JSON) IS NULL", "type that is not allowed"),
    ],
)
def test_unchecked_tree_is_refused_rather_than_compiled(text: str, message: str) -> None:
    table = make_table(sa.MetaData())
    with pytest.raises(InvalidFilter, match=message):
        compile_filter(sqlglot.parse_one(text, into=sqlglot.exp.Condition), table)
