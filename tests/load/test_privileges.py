"""The start-up audit of datasource users on real PostgreSQL and MariaDB: a reader that may
write and a writer that may delete, or write outside writable_tables, are warned about; users
granted only what they need are not."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from db_users import DbUser, db_user
from sqlalchemy.engine import URL

from service.config import parse_config
from service.datasources import DatasourceRegistry
from service.load.privileges import audit
from service.server import Service


@pytest.fixture
def tables(writable_db_url: URL) -> Iterator[tuple[str, str]]:
    names = (f"w_{secrets.token_hex(4)}", f"o_{secrets.token_hex(4)}")
    admin = sa.create_engine(writable_db_url)
    with admin.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"CREATE TABLE {name} (id int PRIMARY KEY)")
    yield names
    with admin.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP TABLE {name}")
    admin.dispose()


def datasource(reader: DbUser, writer: DbUser, writable: str) -> dict[str, object]:
    return {
        "url": reader.url.render_as_string(hide_password=False),
        "write_url": writer.url.render_as_string(hide_password=False),
        "writable_tables": [writable],
    }


def findings(reader: DbUser, writer: DbUser, writable: str) -> list[str]:
    config = parse_config({"datasources": {"shop": datasource(reader, writer, writable)}})
    registry = DatasourceRegistry(config)
    try:
        return audit(registry)
    finally:
        registry.dispose()


def test_users_with_only_what_they_need_pass(writable_db_url: URL, tables: tuple[str, str]) -> None:
    writable, other = tables
    with (
        db_user(writable_db_url, tables=[writable, other]) as reader,
        db_user(
            writable_db_url, tables=[writable], privileges=("SELECT", "INSERT", "UPDATE")
        ) as writer,
    ):
        assert findings(reader, writer, writable) == []


def test_a_reader_that_may_write_and_a_writer_beyond_its_tables_are_warned_about(
    writable_db_url: URL, tables: tuple[str, str]
) -> None:
    writable, other = tables
    with ExitStack() as stack:
        reader = stack.enter_context(
            db_user(writable_db_url, tables=[other], privileges=("SELECT", "INSERT"))
        )
        writer = stack.enter_context(
            db_user(writable_db_url, tables=[writable], privileges=("SELECT", "INSERT", "DELETE"))
        )
        with sa.create_engine(writable_db_url).begin() as conn:
            conn.exec_driver_sql(
                f"GRANT UPDATE ON {other} TO {writer.name}"
                if writable_db_url.get_backend_name() == "postgresql"
                else f"GRANT UPDATE ON {other} TO '{writer.name}'@'%%'"
            )
        found = "\n".join(findings(reader, writer, writable))
    schema = (
        "public" if writable_db_url.get_backend_name() == "postgresql" else writable_db_url.database
    )
    assert f"reader (url) user may INSERT on {schema}.{other}" in found
    assert (
        "writer (write_url) user may DELETE on" in found
        and "imports need SELECT, INSERT, UPDATE only" in found
    )
    assert "may UPDATE on" in found and f"{other}, which is not in writable_tables" in found
    assert writer.password not in found and reader.password not in found


@pytest.mark.postgres
def test_the_service_warns_at_start(
    pg_url: URL, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = f"w_{secrets.token_hex(4)}"
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    with (
        db_user(pg_url, tables=[table], privileges=("SELECT", "TRUNCATE")) as reader,
        db_user(pg_url, tables=[table], privileges=("SELECT", "INSERT", "UPDATE")) as writer,
    ):
        config = parse_config(
            {
                "server": {"data_dir": str(tmp_path)},
                "storage": {"local": {"http_listen": "127.0.0.1:0"}},
                "datasources": {"shop": datasource(reader, writer, table)},
            }
        )
        service = Service(config, listen="127.0.0.1:0")
        with caplog.at_level(logging.WARNING, logger="service.load.privileges"):
            service.start()
            try:
                deadline = time.monotonic() + 10
                while "may TRUNCATE" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                service.stop(grace_s=1)
    with sa.create_engine(pg_url).begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}")
    assert f"datasource shop: the reader (url) user may TRUNCATE on public.{table}" in caplog.text
