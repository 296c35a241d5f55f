"""Generators checked against live PostgreSQL and MariaDB tables: column shapes read right,
unfit generators refused naming the column, ref values taken from the referenced table, the
same seed giving the same preview, and a changed referenced table caught before a write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from service.app.generation import prepare, rows_to_write
from service.domain.errors import NotFound, WrongState
from service.domain.generators import ColumnGenerator, ColumnType
from service.load.table_columns import table_columns

TODAY = date(2026, 11, 30)

PG_SQL = """
CREATE TABLE gen_users (id serial PRIMARY KEY, email varchar(100) NOT NULL, name text);
INSERT INTO gen_users (email) VALUES ('a@x.org'), ('b@x.org'), ('c@x.org');
CREATE TABLE gen_orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code varchar(12) UNIQUE,
    user_id int NOT NULL REFERENCES gen_users(id),
    amount numeric(8,2) NOT NULL,
    qty smallint,
    status varchar(10),
    created_at timestamptz,
    ship_date date,
    token uuid UNIQUE,
    paid boolean,
    doc jsonb,
    added_at timestamp DEFAULT now(),
    twice int GENERATED ALWAYS AS (user_id * 2) STORED
);
"""
MYSQL_SQL = """
CREATE TABLE gen_users (id int AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL, name text);
INSERT INTO gen_users (email) VALUES ('a@x.org'), ('b@x.org'), ('c@x.org');
CREATE TABLE gen_orders (
    id bigint AUTO_INCREMENT PRIMARY KEY,
    code varchar(12) UNIQUE,
    user_id int NOT NULL,
    amount decimal(8,2) NOT NULL,
    qty smallint,
    status enum('new','paid','refunded'),
    created_at datetime,
    ship_date date,
    token char(36) UNIQUE,
    paid tinyint(1),
    doc json,
    added_at timestamp NULL DEFAULT CURRENT_TIMESTAMP,
    twice int AS (user_id * 2) VIRTUAL,
    FOREIGN KEY (user_id) REFERENCES gen_users(id)
);
"""


@pytest.fixture(scope="module")
def engine(writable_db_url: URL) -> Iterator[sa.Engine]:
    url = writable_db_url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS gen_orders")
        conn.exec_driver_sql("DROP TABLE IF EXISTS gen_users")
        for statement in (PG_SQL if engine.dialect.name == "postgresql" else MYSQL_SQL).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS gen_orders")
        conn.exec_driver_sql("DROP TABLE IF EXISTS gen_users")
    engine.dispose()


def _schema(engine: sa.Engine) -> str:
    return "public" if engine.dialect.name == "postgresql" else engine.url.database or ""


def test_live_columns_carry_type_length_precision_keys_and_references(engine: sa.Engine) -> None:
    cols = {c.name: c for c in table_columns(engine, _schema(engine), "gen_orders")}
    assert cols["id"].autoincrement and cols["id"].unique
    assert (cols["code"].type, cols["code"].length, cols["code"].unique) == (
        ColumnType.TEXT,
        12,
        True,
    )
    assert cols["user_id"].ref == ("gen_users", "id") and not cols["user_id"].nullable
    assert (cols["amount"].precision, cols["amount"].scale) == (8, 2)
    assert (cols["qty"].int_min, cols["qty"].int_max) == (-32768, 32767)
    assert cols["created_at"].type is ColumnType.TIMESTAMP
    assert cols["created_at"].timezone is (engine.dialect.name == "postgresql")
    assert cols["ship_date"].type is ColumnType.DATE
    assert cols["paid"].type is ColumnType.BOOLEAN
    assert cols["added_at"].has_default and cols["twice"].computed
    if engine.dialect.name != "postgresql":
        assert cols["status"].enum_values == ("new", "paid", "refunded")


def test_proposals_fill_the_table_and_refs_pick_existing_rows(engine: sa.Engine) -> None:
    prepared = prepare(engine, _schema(engine), "gen_orders", [], rows=50, seed=5, today=TODAY)
    assert prepared.problems == []
    assert prepared.plan is not None
    # Identity, default and computed columns are left to the database, and so is a
    # nullable column no generator suits (PostgreSQL's jsonb; MariaDB's json is text).
    expected = {"id", "added_at", "twice"} | (
        {"doc"} if engine.dialect.name == "postgresql" else set()
    )
    assert set(prepared.plan.left_out) == expected
    assert "user_id: ref table=gen_users column=id (proposed)" in prepared.plan.describe()
    user_ids = {row[prepared.columns.index("user_id")] for row in prepared.preview_rows()}
    assert user_ids <= {"1", "2", "3"}
    assert len(prepared.first_rows) == 10


def test_the_same_seed_previews_the_same_rows(engine: sa.Engine) -> None:
    def preview(seed: int) -> list[tuple[str | None, ...]]:
        return prepare(
            engine, _schema(engine), "gen_orders", [], rows=20, seed=seed, today=TODAY
        ).preview_rows()

    assert preview(11) == preview(11)
    assert preview(11) != preview(12)


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        (
            ColumnGenerator("code", "text", {"min_len": "5", "max_len": "20"}),
            "column `code`: the column is unique and random text",
        ),
        (
            ColumnGenerator("status", "text", {"max_len": "20"}),
            "column `status`: ",  # longer than varchar(10), or not one of the enum's values
        ),
        (
            ColumnGenerator("qty", "int", {"min": "0", "max": "100000"}),
            "column `qty`: max 100000: above the largest smallint",
        ),
        (
            ColumnGenerator("amount", "decimal", {"min": "0", "max": "10000000"}),
            "column `amount`: max 10000000.00: more than 6 digits",
        ),
        (ColumnGenerator("user_id", "int", {}, 0.5), "column `user_id` is NOT NULL"),
        (
            ColumnGenerator("ship_date", "timestamp", {}),
            "column `ship_date`: timestamp fills timestamp or text columns",
        ),
        (ColumnGenerator("twice", "int", {}), "column `twice` is computed by the database"),
        (
            ColumnGenerator("user_id", "ref", {"table": "gen_nothing", "column": "id"}),
            "column `user_id`: gen_nothing.id could not be read",
        ),
    ],
)
def test_an_unfit_generator_is_refused_naming_its_column(
    engine: sa.Engine, rule: ColumnGenerator, said: str
) -> None:
    prepared = prepare(engine, _schema(engine), "gen_orders", [rule], rows=100, seed=1, today=TODAY)
    assert len(prepared.problems) == 1, prepared.problems
    assert said in prepared.problems[0]


def test_explicit_ids_go_into_auto_increment_but_not_into_an_always_generated_identity(
    engine: sa.Engine,
) -> None:
    rule = ColumnGenerator("id", "sequence", {"start": "1000"})
    prepared = prepare(engine, _schema(engine), "gen_orders", [rule], rows=5, seed=1, today=TODAY)
    if engine.dialect.name == "postgresql":  # GENERATED ALWAYS AS IDENTITY
        assert prepared.problems == [
            "column `id` is computed by the database and cannot be written: leave it out"
        ]
    else:  # AUTO_INCREMENT takes the values given
        assert prepared.problems == [] and prepared.columns[0] == "id"


def test_a_missing_table_is_named(engine: sa.Engine) -> None:
    with pytest.raises(NotFound, match="table 'gen_nowhere' does not exist"):
        prepare(engine, _schema(engine), "gen_nowhere", [], rows=1, seed=1, today=TODAY)


def test_rows_to_write_starts_with_the_preview_and_refuses_a_changed_reference(
    engine: sa.Engine,
) -> None:
    args = (engine, _schema(engine), "gen_orders", [])
    approved = prepare(*args, rows=30, seed=3, today=TODAY)
    again = prepare(*args, rows=30, seed=3, today=TODAY)
    rows = list(rows_to_write(again, 30, approved.preview_rows()))
    assert len(rows) == 30 and rows[:10] == approved.first_rows
    with engine.begin() as conn:  # the referenced table changes after the approval
        conn.exec_driver_sql("DELETE FROM gen_users WHERE id = 1")
    try:
        changed = prepare(*args, rows=30, seed=3, today=TODAY)
        with pytest.raises(WrongState, match="differ from the preview that was approved"):
            rows_to_write(changed, 30, approved.preview_rows())
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO gen_users (id, email) VALUES (1, 'a@x.org')")
