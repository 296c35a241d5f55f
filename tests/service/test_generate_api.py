"""Test-data generation through the real service on PostgreSQL and MariaDB: submitted over
gRPC, pre-checked against the live table, previewed, approved, written with the writer's
credentials, counted; refused where the datasource or the generators do not allow it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from db_users import DbUser, db_user
from service_support import APPROVERS, Running
from sqlalchemy.engine import URL

from service import cli
from service.domain.generators import render
from woxqaq.v1 import task_service_pb2 as pb

S = pb.TaskStatus
DONE = {S.TASK_STATUS_EXECUTE_SUCCESS, S.TASK_STATUS_EXECUTE_FAILED}

USERS = """CREATE TABLE {t} (
    id int PRIMARY KEY, email varchar(100) NOT NULL, age smallint, status varchar(12),
    amount decimal(10,2), created_at timestamp NULL, note varchar(200)
)"""
ORDERS = """CREATE TABLE {t} (
    id int PRIMARY KEY, user_id int NOT NULL REFERENCES {users}(id), total decimal(8,2)
)"""


@dataclass
class Db:
    admin: URL
    engine: sa.Engine
    schema: str

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]

    def run(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql)


@pytest.fixture(scope="module")
def db(writable_db_url: URL) -> Iterator[Db]:
    url = writable_db_url
    engine = sa.create_engine(url)
    yield Db(url, engine, "public" if engine.dialect.name == "postgresql" else url.database or "")
    engine.dispose()


@dataclass
class Setup:
    svc: Running
    db: Db
    users: str
    orders: str
    writer: DbUser

    def submit(self, user: str = "sam", **dgd: Any) -> pb.SubmitTaskResponse:
        dgd.setdefault("table", self.users)
        dgd.setdefault("generate_reason", "load test data")
        columns = dgd.pop("columns", [])
        req = pb.SubmitTaskRequest(
            kind=pb.TASK_KIND_DATA_GENERATE,
            dsn="tdb",
            dgd=pb.DataGenerateDetail(columns=[pb.ColumnGenerator(**c) for c in columns], **dgd),
        )
        return self.svc.as_user(user).SubmitTask(req)

    def approve_and_wait(self, task_id: str) -> pb.GetTaskDetailResponse:
        self.svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
        return self.svc.wait_for_status(task_id, DONE, timeout=60)


@pytest.fixture
def setup(
    db: Db, start_service: Callable[..., Running], tmp_path: Path
) -> Iterator[Callable[..., Setup]]:
    made: list[tuple[str, str]] = []
    users_stack: list[Any] = []

    def make(*, allow_generate: bool = True, writable: bool = True, **sections: Any) -> Setup:
        tag = uuid.uuid4().hex[:8]
        users, orders = f"gen_users_{tag}", f"gen_orders_{tag}"
        db.run(USERS.format(t=users))
        db.run(ORDERS.format(t=orders, users=users))
        made.append((orders, users))
        cm = db_user(db.admin, tables=[users, orders], privileges=("SELECT", "INSERT", "UPDATE"))
        writer = cm.__enter__()
        users_stack.append(cm)
        datasource = {
            "url": db.admin.render_as_string(hide_password=False),
            "write_url": writer.url.set(password=None).render_as_string(hide_password=False),
            "write_password": writer.password,
            "writable_tables": [f"{db.schema}.gen_*"] if writable else [],
            "allow_generate": allow_generate,
            "approvers": APPROVERS,
        }
        config = {
            "server": {"data_dir": str(tmp_path / f"data_{tag}")},
            "storage": {"local": {"http_listen": "127.0.0.1:0"}},
            "task_store": {"url": f"sqlite:///{tmp_path / f'tasks_{tag}.db'}"},
            "datasources": {"tdb": datasource},
            **sections,
        }
        return Setup(start_service(config), db, users, orders, writer)

    yield make
    for cm in users_stack:
        cm.__exit__(None, None, None)
    for orders, users in made:
        db.run(f"DROP TABLE IF EXISTS {orders}")
        db.run(f"DROP TABLE IF EXISTS {users}")


def _cells(preview: pb.TaskPreview) -> list[list[str | None]]:
    return [[None if c.null else c.text for c in r.cells] for r in preview.rows]


RULES = [
    {"column": "id", "kind": "sequence", "params": {"start": "1"}},
    {"column": "age", "kind": "int", "params": {"min": "18", "max": "80"}},
    {"column": "status", "kind": "choice", "params": {"values": "paid,refunded", "weights": "9,1"}},
    {"column": "note", "kind": "", "null_ratio": 0.5},
]


def test_generated_rows_are_the_previewed_rows_and_the_run_counts_them(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    sub = s.submit(rows=500, columns=RULES)
    detail = s.svc.detail(sub.task_id)
    assert sub.ok, detail.precheck_messages
    dgd = detail.task.dgd
    assert dgd.seed != 0  # picked by the pre-check and recorded
    generators = {g.column: g for g in dgd.columns}
    assert set(generators) == {"id", "email", "age", "status", "amount", "created_at", "note"}
    assert (generators["email"].kind, generators["email"].params["provider"]) == ("faker", "email")
    assert generators["note"].kind and generators["note"].null_ratio == 0.5
    assert any(e.comment.startswith(f"seed {dgd.seed}") for e in detail.events)
    preview = detail.preview
    assert preview.total_rows == 500 and len(preview.rows) == 10
    assert list(preview.columns) == ["id", "email", "age", "status", "amount", "created_at", "note"]

    done = s.approve_and_wait(sub.task_id)
    assert done.task.status == S.TASK_STATUS_EXECUTE_SUCCESS, done.runs[0].error
    run = done.runs[0]
    assert (run.rows, run.rows_skipped, run.rows_updated) == (500, 0, 0)

    cols = ", ".join(preview.columns)
    written = s.db.rows(f"SELECT {cols} FROM {s.users} ORDER BY id")
    assert len(written) == 500
    assert [[render(v) for v in row] for row in written[:10]] == _cells(preview)
    ages = [r[2] for r in written]
    assert min(ages) >= 18 and max(ages) <= 80
    assert {r[3] for r in written} == {"paid", "refunded"}
    assert 150 < sum(1 for r in written if r[6] is None) < 350
    assert all(isinstance(r[4], Decimal) and 0 <= r[4] <= 1000 for r in written)


def test_the_same_seed_writes_the_same_rows_twice(setup: Callable[..., Setup]) -> None:
    s = setup()
    first = s.submit(rows=200, seed=20261130, columns=RULES)
    assert first.ok
    assert s.approve_and_wait(first.task_id).task.status == S.TASK_STATUS_EXECUTE_SUCCESS
    snapshot = s.db.rows(f"SELECT * FROM {s.users} ORDER BY id")
    s.db.run(f"DELETE FROM {s.users}")

    second = s.submit(rows=200, seed=20261130, columns=RULES)
    assert _cells(s.svc.detail(second.task_id).preview) == _cells(
        s.svc.detail(first.task_id).preview
    )
    assert s.approve_and_wait(second.task_id).task.status == S.TASK_STATUS_EXECUTE_SUCCESS
    assert s.db.rows(f"SELECT * FROM {s.users} ORDER BY id") == snapshot

    other = s.submit(rows=200, seed=7, columns=RULES)
    assert _cells(s.svc.detail(other.task_id).preview) != _cells(
        s.svc.detail(first.task_id).preview
    )


def test_ref_columns_take_values_present_in_the_referenced_table(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    s.db.run(
        f"INSERT INTO {s.users} (id, email) VALUES (10, 'a@x.org'), (20, 'b@x.org'), (30, 'c@x.org')"
    )
    sub = s.submit(table=s.orders, rows=300)  # every column proposed: user_id is a foreign key
    detail = s.svc.detail(sub.task_id)
    assert sub.ok, detail.precheck_messages
    user_id = next(g for g in detail.task.dgd.columns if g.column == "user_id")
    assert (user_id.kind, dict(user_id.params)) == ("ref", {"table": s.users, "column": "id"})

    assert s.approve_and_wait(sub.task_id).task.status == S.TASK_STATUS_EXECUTE_SUCCESS
    picked = [r[0] for r in s.db.rows(f"SELECT user_id FROM {s.orders}")]
    assert len(picked) == 300 and set(picked) == {10, 20, 30}
    orphans = s.db.rows(
        f"SELECT count(*) FROM {s.orders} o WHERE NOT EXISTS "
        f"(SELECT 1 FROM {s.users} u WHERE u.id = o.user_id)"
    )
    assert orphans == [(0,)]


def test_unfit_generators_fail_the_precheck_naming_each_column(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    sub = s.submit(
        rows=100,
        columns=[
            {"column": "age", "kind": "int", "params": {"min": "1", "max": "100000"}},
            {"column": "email", "kind": "text", "params": {"max_len": "500"}},
            {"column": "id", "kind": "int", "params": {"min": "1", "max": "50"}},
        ],
    )
    detail = s.svc.detail(sub.task_id)
    assert not sub.ok and detail.task.status == S.TASK_STATUS_PRE_CHECK_FAILED
    messages = "\n".join(detail.precheck_messages)
    assert "column `age`: max 100000: above the largest smallint" in messages
    assert "column `email`: max_len 500 is longer than varchar(100) holds (100)" in messages
    assert "column `id`: the column is unique and this range has 50 values for 100 rows" in messages
    assert s.db.rows(f"SELECT count(*) FROM {s.users}") == [(0,)]


def test_a_datasource_without_allow_generate_or_writable_tables_is_refused_naming_the_keys(
    setup: Callable[..., Setup],
) -> None:
    s = setup(allow_generate=False, writable=False)
    sub = s.submit(rows=10)
    messages = s.svc.detail(sub.task_id).precheck_messages
    assert not sub.ok
    assert "set datasources.tdb.allow_generate = true (for test databases only)" in messages[0]
    assert f"table {s.db.schema}.{s.users} is not writable" in messages[1]
    assert "datasources.tdb.writable_tables" in messages[1]


def test_more_rows_than_generate_max_rows_are_refused(setup: Callable[..., Setup]) -> None:
    s = setup(generate={"max_rows": 100})
    sub = s.submit(rows=101)
    assert not sub.ok
    assert s.svc.detail(sub.task_id).precheck_messages == [
        "101 rows asked for; generate.max_rows allows 100: ask for fewer"
    ]


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"dgd": None}, "dgd is missing: say which table gets how many rows"),
    ({"rows": 0}, "dgd.rows is 0: ask for at least 1 row"),
    ({"table": " "}, "dgd.table is empty"),
    (
        {"columns": [{"column": "age", "kind": "int", "null_ratio": 2.0}]},
        "null_ratio 2.0 is not between 0 and 1",
    ),
    ({"columns": [{"column": "", "kind": "int"}]}, "dgd.columns[1] has no column name"),
    ({"mode": 9}, "dgd.mode = 9 is not a known value"),
    ({"cron": True}, "runs once: a CRON schedule is for exports only"),
]


def test_a_malformed_generate_request_is_invalid_argument_saying_what_to_fix(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    for request_fields, said in MALFORMED:
        dgd: dict[str, Any] = {"table": s.users, "rows": 10, **request_fields}
        req = pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_GENERATE, dsn="tdb")
        if dgd.pop("cron", False):
            req.schedule.CopyFrom(pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *"))
        if "dgd" not in dgd:
            columns = [pb.ColumnGenerator(**c) for c in dgd.pop("columns", [])]
            req.dgd.CopyFrom(pb.DataGenerateDetail(columns=columns, **dgd))
        with pytest.raises(grpc.RpcError) as err:
            s.svc.as_user("sam").SubmitTask(req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, said
        assert said in err.value.details()
    assert s.svc.as_user("sam").ListTaskDetail(pb.ListTaskRequest()).total == 0


def test_an_approver_cancels_a_running_generation_and_the_table_is_as_it_was(
    setup: Callable[..., Setup],
) -> None:
    s = setup()
    s.db.run(f"INSERT INTO {s.users} (id, email) VALUES (2000000, 'kept@x.org')")
    cheap = [  # no Faker pools: the write is what this test is about
        {"column": "id", "kind": "sequence", "params": {"start": "1"}},
        {"column": "email", "kind": "text", "params": {"min_len": "5", "max_len": "20"}},
        {"column": "note", "kind": "constant", "params": {"value": "x"}},
    ]
    sub = s.submit(rows=1_000_000, columns=cheap, exector=pb.EXEC_COMMITTER)
    assert sub.ok, s.svc.detail(sub.task_id).precheck_messages
    task_id = int(sub.task_id)
    s.svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    s.svc.as_user("sam").Execute(pb.ExecuteRequest(task_id=task_id, executor="sam"))
    for progress in s.svc.as_user("sam").WatchTask(pb.WatchTaskRequest(task_id=sub.task_id)):
        if progress.rows > 0:
            break
    cancel = pb.CancelRequest(task_id=task_id, operator="bob", comment="wrong table")
    assert s.svc.as_user("bob").Cancel(cancel).ok
    s.svc.wait_for_status(sub.task_id, {S.TASK_STATUS_CANCELED})
    deadline = time.monotonic() + 30
    while (detail := s.svc.detail(sub.task_id)).runs[0].status == S.TASK_STATUS_EXECUTING:
        assert time.monotonic() < deadline, "the canceled run did not stop"
        time.sleep(0.1)
    assert detail.runs[0].status == S.TASK_STATUS_CANCELED
    assert detail.runs[0].error == "canceled by bob" and detail.runs[0].rows == 0
    assert s.db.rows(f"SELECT id, email FROM {s.users}") == [(2000000, "kept@x.org")]


def test_the_cli_submits_rules_and_shows_the_generators_and_the_preview(
    setup: Callable[..., Setup], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup()

    def woxqaq(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = cli.main(["--addr", s.svc.addr, "--user", "sam", "generate", "--dsn", "tdb", *args])
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, err = woxqaq(
        "--table", s.users, "--rows", "50", "--seed", "99",
        "--rule", "id=sequence:1", "--rule", "age: int 18 30",
        "--rule", "status=choice:paid,refunded:weights:9,1", "--rule", "note=null:0.5",
    )  # fmt: skip
    assert rc == cli.EXIT_OK, err
    assert re.match(r"Task \d+ submitted: APPROVING \(waiting for approval\)", out)
    assert f"50 rows into {s.users}, INSERT, seed 99" in out
    assert "    age: int min=18 max=30\n" in out
    assert "    status: choice values=paid,refunded weights=9,1\n" in out
    assert "    email: faker provider=email\n" in out  # proposed, shown to approvers
    assert "preview (first 10 of 50 rows)" in out
    task_id = re.match(r"Task (\d+)", out).group(1)  # type: ignore[union-attr]
    assert s.approve_and_wait(task_id).task.status == S.TASK_STATUS_EXECUTE_SUCCESS
    capsys.readouterr()
    assert cli.main(["--addr", s.svc.addr, "--user", "sam", "show", task_id]) == cli.EXIT_OK
    assert "50 rows written, 0 skipped, 0 updated" in capsys.readouterr().out

    rc, out, err = woxqaq("--table", s.users, "--rows", "5", "--rule", "age int 18")
    assert rc == cli.EXIT_USAGE and out == ""
    assert err.startswith("woxqaq: rule 1: `age int 18` is not a rule")

    rc, out, err = woxqaq("--table", s.users, "--rows", "5", "--rule", "age=int:1:100000")
    assert rc == cli.EXIT_FAILED
    assert "column `age`: max 100000: above the largest smallint" in out
