"""Least-privilege database users made for one test and dropped after it: a reader that may
only SELECT and a writer that may only SELECT, INSERT and UPDATE the tables it is given."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL

from service.datasources import offer_local_infile


@dataclass(frozen=True)
class DbUser:
    name: str
    password: str
    url: URL  # with the password, for engines of the test

    def engine(self) -> sa.Engine:
        """An engine as the service builds one for a datasource."""
        engine = sa.create_engine(self.url, pool_pre_ping=True)
        offer_local_infile(engine)
        return engine


@contextmanager
def db_user(
    admin_url: URL,
    *,
    tables: Sequence[str],
    privileges: Sequence[str] = ("SELECT",),
    schema: str = "",
) -> Iterator[DbUser]:
    """A new user of the database at `admin_url` with `privileges` on `tables` only."""
    name = f"woxqaq_u_{secrets.token_hex(5)}"
    password = "pw-" + secrets.token_hex(8)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    backend = admin_url.get_backend_name()
    grants = ", ".join(privileges)
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                ns = schema or "public"
                conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
                conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {admin_url.database} TO {name}")
                conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {ns} TO {name}")
                for table in tables:
                    conn.exec_driver_sql(f"GRANT {grants} ON {ns}.{table} TO {name}")
            else:
                db = schema or admin_url.database
                conn.exec_driver_sql(f"CREATE USER '{name}'@'%%' IDENTIFIED BY '{password}'")
                for table in tables:
                    conn.exec_driver_sql(f"GRANT {grants} ON `{db}`.`{table}` TO '{name}'@'%%'")
        yield DbUser(name, password, admin_url.set(username=name, password=password))
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE usename = '{name}'"
                )
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            else:
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
        admin.dispose()
