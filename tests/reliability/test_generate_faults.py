"""A service killed with SIGKILL in the middle of writing generated rows: the table is as it
was (the open transaction dies with the connection), and the run is failed with its reason
once another process notices, on PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fault_support import ServiceProcess, reliability_config, wait_for
from sqlalchemy.engine import URL

from service.app.runs import STOPPED_MESSAGE
from woxqaq.v1 import task_service_pb2 as pb

S = pb.TaskStatus
ROWS = 1_000_000
KEPT = (2_000_000, "kept")


@pytest.fixture
def target(writable_db_url: URL) -> Iterator[tuple[URL, str]]:
    url = writable_db_url
    table = f"gen_fault_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY, code varchar(20))")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({KEPT[0]}, '{KEPT[1]}')")
    yield url, table
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()


def _writing(url: URL, table: str) -> bool:
    """The run's statement is on the server: a COPY on PostgreSQL, an INSERT on MariaDB."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if url.get_backend_name() == "postgresql":  # into the table, or a staging one
                sql = (
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    f"AND query LIKE 'COPY %%' AND (query LIKE '%%{table}%%' "
                    "OR query LIKE '%%woxqaq_load_rows%%') AND pid <> pg_backend_pid()"
                )
            else:
                sql = (
                    "SELECT count(*) FROM information_schema.processlist "
                    f"WHERE info LIKE 'INSERT INTO %%{table}%%'"
                )
            return bool(conn.exec_driver_sql(sql).scalar())
    finally:
        engine.dispose()


def test_a_service_killed_mid_generation_leaves_the_table_as_it_was(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    target: tuple[URL, str],
) -> None:
    url, table = target
    config = reliability_config(tmp_path, scratch_store, url.render_as_string(hide_password=False))
    config["datasources"]["pg"] |= {
        "write_url": url.render_as_string(hide_password=False),
        "writable_tables": ["gen_fault_*"],
        "allow_generate": True,
    }
    svc = service_process(config)
    dgd = pb.DataGenerateDetail(
        table=table,
        rows=ROWS,
        columns=[
            pb.ColumnGenerator(column="id", kind="sequence"),
            pb.ColumnGenerator(column="code", kind="text", params={"max_len": "20"}),
        ],
    )
    sub = svc.caller("sam").SubmitTask(
        pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_GENERATE, dsn="pg", dgd=dgd)
    )
    assert sub.ok, svc.detail(sub.task_id).precheck_messages
    svc.caller("alice").Approve(pb.ApproveRequest(task_id=int(sub.task_id), approver="alice"))
    wait_for(lambda: _writing(url, table), timeout=30, what="the generated rows being written")

    svc.kill()

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT id, code FROM {table}").all() == [KEPT]
    engine.dispose()

    svc.start()
    done = wait_for(
        lambda: (d := svc.detail(sub.task_id)).task.status == S.TASK_STATUS_EXECUTE_FAILED and d,
        timeout=30,
        what="the killed run recovered",
    )
    assert done.runs[0].error == STOPPED_MESSAGE and done.runs[0].rows == 0
