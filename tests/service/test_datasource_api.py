"""DatasourceService over the real socket: which datasources a user sees, whether they answer,
their tables read live from SQLite and PostgreSQL, and the task service's visibility rules."""

from __future__ import annotations

import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from service_support import APPROVERS, Running
from sqlalchemy.engine import URL

from woxqaq.v1 import datasource_service_pb2 as dpb

SECRET = "hunter2-never-shown"
Start = Callable[..., Running]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused(call: Callable[[], object], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    return str(info.value.details())


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def sales(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A datasource URL and a database (PostgreSQL: a schema) of its own with two tables."""
    base: URL = request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")
    database = f"sales_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base)
    create = "SCHEMA" if request.param == "postgres" else "DATABASE"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE {create} {database}")
        conn.exec_driver_sql(f"CREATE TABLE {database}.orders (id int, amount numeric, note text)")
        conn.exec_driver_sql(f"CREATE TABLE {database}.refunds (order_id int, reason text)")
    engine.dispose()
    return base.render_as_string(hide_password=False), database


@pytest.mark.postgres
def test_lists_datasources_with_settings_and_whether_each_answers(
    start_service: Start, pg_url: URL, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.db"
    svc = start_service(
        datasources={
            "pgsales": {
                "url": pg_url.render_as_string(hide_password=False),
                "password": SECRET,  # trust authentication: accepted and never shown
                "approvers": ["alice"],
                "required_approvals": 2,
                "description": "sales, read replica",
            },
            "offline": {
                "url": f"postgresql+psycopg://reader@127.0.0.1:{closed_port()}/sales",
                "password": SECRET,
                "approvers": ["bob"],
            },
            "gone": {"url": f"sqlite:///{missing}", "approvers": ["bob"]},
        }
    )
    resp = svc.datasources_as("zoe").ListDatasources(dpb.DatasourceQuery(check_reachable=True))
    by_name = {d.name: d for d in resp.datasources}
    assert list(by_name) == ["gone", "offline", "pgsales", "shop"]  # sorted by name

    shop = by_name["shop"]
    assert (shop.dialect, list(shop.approvers), shop.required_approvals) == (
        "sqlite",
        sorted(APPROVERS),
        1,
    )
    assert (shop.approval_channel, shop.default_database) == ("C_APPROVALS", "main")
    assert (shop.reachable_checked, shop.reachable, shop.unreachable_reason) == (True, True, "")

    sales = by_name["pgsales"]
    assert (sales.dialect, list(sales.approvers), sales.required_approvals) == (
        "postgresql",
        ["alice"],
        2,
    )
    assert (sales.description, sales.default_database, sales.reachable) == (
        "sales, read replica",
        "public",
        True,
    )

    offline = by_name["offline"]
    assert offline.reachable_checked and not offline.reachable
    assert "refused" in offline.unreachable_reason.lower(), offline.unreachable_reason
    assert by_name["gone"].reachable is False
    assert by_name["gone"].unreachable_reason == f"the database file {missing} does not exist"
    assert not missing.exists()  # looking did not create it
    assert SECRET not in str(resp)

    # The reader audit runs beside serving at start-up: once it has, the listing shows it.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = svc.datasources_as("zoe").ListDatasources(dpb.DatasourceQuery())
        found = {d.name: list(d.audit_findings) for d in listed.datasources}
        if found["pgsales"] and found["offline"]:
            break
        time.sleep(0.05)
    assert found["pgsales"][0] == "it is a superuser"
    assert found["pgsales"][1].startswith("exports fail the pre-check: connect the datasource")
    assert found["offline"][0].startswith("the reader audit could not run: ")
    assert found["shop"] == found["gone"] == []  # SQLite has no users to audit
    assert SECRET not in str(listed)

    unchecked = svc.datasources_as("zoe").ListDatasources(dpb.DatasourceQuery())
    assert [d.reachable_checked for d in unchecked.datasources] == [False] * 4


def test_lists_a_sqlite_datasources_tables_with_their_columns(
    start_service: Start, tmp_path: Path
) -> None:
    svc = start_service()
    resp = svc.datasources_as("zoe").ListTables(dpb.TableQuery(dsn="shop"))
    with sqlite3.connect(tmp_path / "shop.db") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        expected = {n: [c[1] for c in db.execute(f"PRAGMA table_info({n})")] for n in names}
    assert resp.database == "main"
    assert [t.name for t in resp.tables] == sorted(expected)
    assert {t.name: list(t.columns) for t in resp.tables} == expected
    assert "orders" in expected and "customers" in expected

    caller = svc.datasources_as("zoe")
    for request, words in (
        (dpb.TableQuery(dsn="nowhere"), "datasource 'nowhere' does not exist; choose one of: shop"),
        (dpb.TableQuery(dsn=""), "dsn is empty; choose one of: shop"),
        (dpb.TableQuery(dsn="shop", database="nope"), "database 'nope' does not exist"),
    ):
        details = refused(lambda r=request: caller.ListTables(r), grpc.StatusCode.NOT_FOUND)
        assert words in details


def test_lists_a_postgresql_schemas_and_a_mariadb_databases_tables(
    start_service: Start, sales: tuple[str, str]
) -> None:
    url, database = sales
    svc = start_service(datasources={"sales": {"url": url}})
    resp = svc.datasources_as("zoe").ListTables(dpb.TableQuery(dsn="sales", database=database))
    assert resp.database == database
    assert [(t.name, list(t.columns)) for t in resp.tables] == [
        ("orders", ["id", "amount", "note"]),
        ("refunds", ["order_id", "reason"]),
    ]


def test_restricted_datasources_are_hidden_from_those_who_may_not_see_them(
    start_service: Start, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE secrets (id int)").connection.close()
    svc = start_service(
        server={"restrict_visibility": True},
        datasources={
            "hr": {"url": f"sqlite:///{other}", "approvers": ["hana"], "viewers": ["vic"]}
        },
    )

    def visible(user: str) -> list[str]:
        resp = svc.datasources_as(user).ListDatasources(dpb.DatasourceQuery())
        return [d.name for d in resp.datasources]

    assert visible("alice") == ["shop"]  # approves shop
    assert visible("hana") == ["hr"]
    assert visible("vic") == ["hr"]  # views hr
    assert visible("zoe") == []

    for user in ("zoe", "alice"):
        details = refused(
            lambda u=user: svc.datasources_as(u).ListTables(dpb.TableQuery(dsn="hr")),
            grpc.StatusCode.NOT_FOUND,
        )
        assert "'hr' does not exist" in details and "secrets" not in details
    assert "choose one of: none is visible to you" in refused(
        lambda: svc.datasources_as("zoe").ListTables(dpb.TableQuery(dsn="shop")),
        grpc.StatusCode.NOT_FOUND,
    )
    tables = svc.datasources_as("vic").ListTables(dpb.TableQuery(dsn="hr")).tables
    assert [t.name for t in tables] == ["secrets"]


def test_served_with_health_reflection_and_the_token(start_service: Start) -> None:
    svc = start_service(server={"token": "s3cret-token"})
    name = "woxqaq.v1.DatasourceService"
    health = health_pb2_grpc.HealthStub(svc.channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    db = ProtoReflectionDescriptorDatabase(svc.channel)
    assert name in set(db.get_services())

    from google.protobuf.descriptor_pool import DescriptorPool

    methods = DescriptorPool(db).FindServiceByName(name).methods
    assert {m.name for m in methods} == {"ListDatasources", "ListTables"}

    assert [
        d.name for d in svc.datasources_as("zoe").ListDatasources(dpb.DatasourceQuery()).datasources
    ] == ["shop"]
    anonymous = svc.datasources_as("zoe")
    anonymous.metadata = [("x-woxqaq-user", "zoe")]  # no token
    details = refused(
        lambda: anonymous.ListDatasources(dpb.DatasourceQuery()), grpc.StatusCode.UNAUTHENTICATED
    )
    assert "s3cret" not in details
