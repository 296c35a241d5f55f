"""Reader audit with real roles and users, created here (uniquely named) and dropped after:
what each may do beyond reading is named, a privileged reader fails the pre-check with the
fix, and `allow_privileged_reader` lets it through with a warning at every start."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from service_support import Running
from sqlalchemy.engine import URL

from service.config import parse_config
from service.datasources import DatasourceRegistry
from service.server import Service

TAG = uuid.uuid4().hex[:8]
SCHEMA = f"woxqaq_audit_{TAG}"  # of its own: the session database's other tests see nothing

PG_ROLES = {
    "reader": ["GRANT SELECT ON {s}.audit_t TO {r}"],
    "writer": ["GRANT SELECT, INSERT, UPDATE ON {s}.audit_t TO {r}"],
    "truncater": ["GRANT SELECT, TRUNCATE ON {s}.audit_t TO {r}"],
    "files": ["GRANT SELECT ON {s}.audit_t TO {r}", "GRANT pg_read_server_files TO {r}"],
    "program": ["GRANT pg_execute_server_program TO {r}"],
    "createrole": ["ALTER ROLE {r} CREATEROLE"],
    "bypassrls": ["ALTER ROLE {r} BYPASSRLS"],
}
PG_EXPECTED = {
    "reader": None,
    "writer": "INSERT on 1 table(s)",
    "truncater": "TRUNCATE on 1 table(s)",
    "files": "member of pg_read_server_files",
    "program": "member of pg_execute_server_program",
    "createrole": "CREATEROLE",
    "bypassrls": "BYPASSRLS",
}

MYSQL_USERS = {
    "reader": "GRANT SELECT ON {db}.* TO {u}",
    "writer": "GRANT SELECT, INSERT, DELETE ON {db}.* TO {u}",
    "file": "GRANT SELECT ON {db}.* TO {u}; GRANT FILE ON *.* TO {u}",
    "ddl": "GRANT SELECT, CREATE, DROP ON {db}.* TO {u}",
    "all": "GRANT ALL PRIVILEGES ON {db}.* TO {u}",
    "super": "GRANT SELECT ON {db}.* TO {u}; GRANT SUPER ON *.* TO {u}",
}
MYSQL_EXPECTED = {
    "reader": None,
    "writer": "INSERT",
    "file": "FILE on *.*",
    "ddl": "DROP",
    "all": "ALL PRIVILEGES",
    "super": "SUPER",
}


def _config(tmp: Path, datasources: dict[str, Any]) -> Any:
    return parse_config(
        {
            "server": {"data_dir": str(tmp / "data")},
            "storage": {"local": {"http_listen": "127.0.0.1:0"}},
            "task_store": {"url": f"sqlite:///{tmp / 'tasks.db'}"},
            "scheduler": {"enabled": False},
            "datasources": {
                name: {"approvers": ["alice"]} | ds for name, ds in datasources.items()
            },
        }
    )


def _accounts(
    url: URL, names: dict[str, str], setup: list[str], teardown: list[str]
) -> Iterator[dict[str, URL]]:
    """Run `setup` as the server's superuser, yield a URL per account, run `teardown`."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in setup:
            conn.exec_driver_sql(statement)
    try:
        yield {kind: url.set(username=name, password=None) for kind, name in names.items()}
    finally:
        with admin.connect() as conn:
            for statement in teardown:
                conn.exec_driver_sql(statement)
        admin.dispose()


@pytest.fixture(scope="module")
def pg_roles(pg_url: URL) -> Iterator[dict[str, URL]]:
    roles = {kind: f"woxqaq_audit_{TAG}_{kind}" for kind in PG_ROLES}
    setup = [
        f"CREATE SCHEMA {SCHEMA}",
        f"CREATE TABLE {SCHEMA}.audit_t (id int)",
        f"CREATE TABLE {SCHEMA}.audit_secret (token text)",
    ]
    for kind, role in roles.items():
        setup += [f"CREATE ROLE {role} LOGIN", f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}"]
        setup += [grant.format(r=role, s=SCHEMA) for grant in PG_ROLES[kind]]
    teardown = [f"DROP OWNED BY {role}; DROP ROLE {role}" for role in roles.values()]
    yield from _accounts(pg_url, roles, setup, [*teardown, f"DROP SCHEMA {SCHEMA} CASCADE"])


@pytest.fixture(scope="module")
def mysql_users(mysql_url: URL) -> Iterator[dict[str, URL]]:
    users = {kind: f"wx_{TAG}_{kind}" for kind in MYSQL_USERS}
    setup = []
    for kind, user in users.items():
        account = f"'{user}'@'%%'"  # %%: the driver's paramstyle
        setup.append(f"CREATE USER {account}")
        grants = MYSQL_USERS[kind].format(db=mysql_url.database, u=account)
        setup += grants.split("; ")
    teardown = [f"DROP USER IF EXISTS '{user}'@'%%'" for user in users.values()]
    yield from _accounts(mysql_url, users, setup, teardown)


def _audit(tmp: Path, url: URL, **ds: Any) -> Any:
    registry = DatasourceRegistry(_config(tmp, {"x": {"url": url.render_as_string(False)} | ds}))
    try:
        return registry.audit(registry.get("x"))
    finally:
        registry.dispose()


def check_audit(audit: Any, backend: str, expected: str | None) -> None:
    """`expected` names the privilege the audit must report; None: a plain reader."""
    assert not audit.error
    if expected is None:
        assert audit.privileges == () and audit.problem(backend) is None
        return
    assert any(expected in p for p in audit.privileges), audit.privileges
    problem = audit.problem(backend)
    assert problem and expected in problem and "GRANT SELECT" in problem
    assert "allow_privileged_reader" in problem


ACCOUNTS = [
    *(
        pytest.param("postgresql", k, id=f"postgres-{k}", marks=pytest.mark.postgres)
        for k in PG_ROLES
    ),
    *(pytest.param("mysql", k, id=f"mariadb-{k}", marks=pytest.mark.mysql) for k in MYSQL_USERS),
]


@pytest.mark.parametrize(("backend", "kind"), ACCOUNTS)
def test_reader_audit_names_what_an_account_may_do(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, kind: str
) -> None:
    accounts = request.getfixturevalue("pg_roles" if backend == "postgresql" else "mysql_users")
    audit = _audit(tmp_path, accounts[kind])
    # MariaDB says user@host
    assert audit.user.split("@")[0] == accounts[kind].username
    expected = (PG_EXPECTED if backend == "postgresql" else MYSQL_EXPECTED)[kind]
    check_audit(audit, backend, expected)


@pytest.mark.postgres
def test_postgres_superuser_is_a_privileged_reader(pg_url: URL, tmp_path: Path) -> None:
    audit = _audit(tmp_path, pg_url)
    assert audit.privileges == ("it is a superuser",)


@pytest.mark.postgres
def test_postgres_dblink_executable_by_the_reader_until_revoked(
    fresh_pg_url: URL, pg_roles: dict[str, URL], tmp_path: Path
) -> None:
    admin = sa.create_engine(fresh_pg_url, isolation_level="AUTOCOMMIT")
    reader = fresh_pg_url.set(username=pg_roles["reader"].username, password=None)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION dblink")
        audit = _audit(tmp_path, reader)
        assert any("EXECUTE dblink" in p for p in audit.privileges), audit.privileges
        with admin.connect() as conn:
            conn.exec_driver_sql("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC")
        assert _audit(tmp_path, reader).privileges == ()
    finally:
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.mysql
def test_privileged_reader_fails_the_pre_check_unless_allowed_with_a_warning_at_start(
    pg_roles: dict[str, URL],
    mysql_users: dict[str, URL],
    pg_url: URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = _config(
        tmp_path,
        {
            "pg_writer": {"url": pg_roles["writer"].render_as_string(False)},
            "pg_reader": {"url": pg_roles["reader"].render_as_string(False)},
            "maria_file": {"url": mysql_users["file"].render_as_string(False)},
            "pg_super_allowed": {
                "url": pg_url.render_as_string(False),
                "allow_privileged_reader": True,
            },
        },
    )
    with caplog.at_level(logging.WARNING, logger="service.datasources"):
        service = Service(cfg, listen="127.0.0.1:0")
        port = service.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        svc = Running(service, cfg, channel, "")
        try:
            # the start-up audit runs beside serving: wait until it has spoken
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                "pg_super_allowed" in r.getMessage() for r in caplog.records
            ):
                time.sleep(0.05)
            outcomes = {}
            for dsn in ("pg_writer", "pg_reader", "maria_file", "pg_super_allowed"):
                resp = svc.submit("sam", dsn=dsn, sql="SELECT 1 AS one")
                outcomes[dsn] = (resp.ok, list(svc.detail(resp.task_id).precheck_messages))
            # a table the reader may not read: the database says so before anyone approves
            resp = svc.submit(
                "sam", dsn="pg_reader", sql=f"SELECT token FROM {SCHEMA}.audit_secret"
            )
            denied = list(svc.detail(resp.task_id).precheck_messages)
        finally:
            channel.close()
            service.stop(grace_s=1)
    ok, messages = outcomes["pg_writer"]
    assert not ok and "INSERT on 1 table(s)" in messages[0] and "GRANT SELECT" in messages[0]
    ok, messages = outcomes["maria_file"]
    assert not ok and "FILE on *.*" in messages[0]
    assert outcomes["pg_reader"] == (True, [])
    assert denied == ["the database refused the query: permission denied for table audit_secret"]
    assert outcomes["pg_super_allowed"] == (True, [])
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "pg_super_allowed" in w and "superuser" in w and "allowed by allow_privileged_reader" in w
        for w in warned
    ), warned
    assert any("pg_writer" in w and "fail the pre-check" in w for w in warned), warned
    assert not any("pg_reader " in w for w in warned)


def test_pre_check_summary_is_a_plain_value_for_listings() -> None:
    from service.dbcheck.audit import ReaderAudit

    audit = ReaderAudit("shop", "reader", ("it has INSERT on 2 table(s), e.g. public.t",))
    assert audit.privileged and audit.problem("postgresql")
    assert ReaderAudit("shop", "reader", audit.privileges, allowed=True).problem("mysql") is None
    assert not ReaderAudit("demo", checked=False).privileged
