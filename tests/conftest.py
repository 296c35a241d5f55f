"""Fixtures shared by every test package: the machine's real databases.

PostgreSQL and MariaDB are reached at WOXQAQ_TEST_PG_URL / WOXQAQ_TEST_MYSQL_URL (defaults:
the local servers). Each test session works in databases of its own, created here and
dropped at the end, so runs never see each other's tables. When a server is down the tests
that need it are skipped locally, but under CI=true they fail: CI must run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

PG_URL = os.environ.get("WOXQAQ_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("WOXQAQ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{message}; under CI=true the database tests must run", pytrace=False)
    pytest.skip(message)


def _scratch_database(base: str, what: str) -> Iterator[URL]:
    """Create a uniquely named database on the server at `base`; drop it afterwards."""
    url = make_url(base)
    name = f"woxqaq_t_{uuid.uuid4().hex[:10]}"
    # pre_ping: a test may restart the server while the session holds this pool.
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(what, exc)
    try:
        yield url.set(database=name)
    finally:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@pytest.fixture
def fresh_pg_url() -> Iterator[URL]:
    """A fresh, empty PostgreSQL database for one test (a task store that sees no other test)."""
    yield from _scratch_database(PG_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[URL]:
    """A fresh, empty PostgreSQL database for this test session."""
    yield from _scratch_database(PG_URL, "PostgreSQL")


@pytest.fixture
def fresh_mysql_url() -> Iterator[URL]:
    """A fresh, empty MariaDB/MySQL database for one test (tables no other test sees)."""
    yield from _scratch_database(MYSQL_URL, "MariaDB/MySQL")


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[URL]:
    """A fresh, empty MariaDB/MySQL database for this test session."""
    yield from _scratch_database(MYSQL_URL, "MariaDB/MySQL")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def writable_db_url(request: pytest.FixtureRequest) -> URL:
    """This session's PostgreSQL database, then its MariaDB one: a test using it runs on both."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer  # only test runs that use S3 pay for the import

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
