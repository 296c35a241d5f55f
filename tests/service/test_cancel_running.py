"""Cancel while EXECUTING, on real servers: the statement is stopped on the database within
seconds, no query is left running, no file is published, the run ends "canceled by <who>"
and the task is CANCELED; also for a schedule's running firing and through another replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from fake_clock import Clock
from service_support import Running, runs, settled, shop_config

from service import cli
from woxqaq.v1 import task_service_pb2 as pb

PG_SLOW = "SELECT count(*) AS n FROM generate_series(1, 3000000000) AS g WHERE g % 7 = 3"
PG_STREAMING = "SELECT g, md5(g::text) AS h FROM generate_series(1, 500000000) AS g"
MARIA_SLOW = "SELECT count(*) AS n FROM seq_1_to_100000000000 AS s WHERE s.seq % 7 = 3"
STOPPED_WITHIN_S = 5.0

Start = Callable[..., Running]


def config_with(tmp_path: Path, store_url: str = "", **urls: Any) -> dict[str, Any]:
    config = shop_config(tmp_path, store_url)
    config["datasources"] = {
        name: {
            "url": url.render_as_string(hide_password=False),
            "approvers": ["alice", "bob"],
            "allow_privileged_reader": True,  # the test server's superuser
        }
        for name, url in urls.items()
    }
    config["scheduler"] = {"enabled": False}
    return config


def running_queries(url: Any, marker: str) -> list[str]:
    """Statements containing `marker` the database of `url` is executing now (other than
    this one; other databases on the server belong to other test runs)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if url.get_backend_name() == "postgresql":
                sql = (
                    "SELECT query FROM pg_stat_activity WHERE state = 'active' "
                    "AND datname = current_database() AND pid <> pg_backend_pid() "
                    "AND query LIKE %s"
                )
            else:
                sql = (
                    "SELECT info FROM information_schema.processlist "
                    "WHERE id <> connection_id() AND db = database() AND info LIKE %s"
                )
            return [r[0] for r in conn.exec_driver_sql(sql, (f"%{marker}%",))]
    finally:
        engine.dispose()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def published(svc: Running, task_id: str) -> list[Path]:
    objects = svc.service.objects.root / "objects"  # type: ignore[attr-defined]
    return [p for p in objects.rglob("*") if p.is_file() and f"tasks/{task_id}/" in p.as_posix()]


def start_running(svc: Running, dsn: str, sql: str, url: Any, marker: str) -> str:
    """Submit `sql`, approve it (it runs by itself), and wait until the server runs it."""
    resp = svc.submit("dave", sql=sql, dsn=dsn)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    wait_until("the export's statement", lambda: bool(running_queries(url, marker)))
    return resp.task_id


def assert_stopped_by(svc: Running, task_id: str, who: str, url: Any, marker: str) -> None:
    """After a Cancel: the run canceled, the query gone, nothing published, within 5 s."""

    def ended() -> bool:
        return svc.detail(task_id).runs[0].status != pb.TASK_STATUS_EXECUTING

    took = wait_until("the run to end", ended)
    took += wait_until("the statement to stop", lambda: not running_queries(url, marker))
    print(f"task {task_id}: stopped {took:.2f} s after the cancel")  # shown with -rP
    assert took < STOPPED_WITHIN_S, f"stopped after {took:.1f} s"
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_CANCELED
    run = detail.runs[0]
    assert (run.status, run.error) == (pb.TASK_STATUS_CANCELED, f"canceled by {who}")
    assert published(svc, task_id) == []
    assert list(svc.config.work_dir.iterdir()) == []  # the partial file is gone too
    actions = [(e.actor, e.action) for e in detail.events]
    assert (who, "cancel") in actions and ("export", "run_canceled") in actions
    with pytest.raises(grpc.RpcError) as info:
        svc.as_user("dave").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "marker"),
    [(PG_SLOW, "generate_series(1, 3000000000)"), (PG_STREAMING, "md5(g::text)")],
    ids=["busy-statement", "streaming-rows"],
)
def test_a_long_postgresql_export_is_stopped_by_an_approver(
    start_service: Start, pg_url: Any, tmp_path: Path, sql: str, marker: str
) -> None:
    svc = start_service(config_with(tmp_path, pg=pg_url))
    task_id = start_running(svc, "pg", sql, pg_url, marker)
    svc.as_user("bob").Cancel(pb.CancelRequest(task_id=int(task_id), operator="bob"))
    assert_stopped_by(svc, task_id, "bob", pg_url, marker)


@pytest.mark.mysql
def test_a_long_mariadb_export_is_stopped_by_its_submitter_from_the_cli(
    start_service: Start, mysql_url: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svc = start_service(config_with(tmp_path, maria=mysql_url))
    task_id = start_running(svc, "maria", MARIA_SLOW, mysql_url, "seq_1_to_100000000000")
    capsys.readouterr()
    rc = cli.main(["--addr", svc.addr, "--user", "dave", "cancel", task_id, "-m", "wrong filter"])
    assert (rc, capsys.readouterr().out.strip()) == (cli.EXIT_OK, f"Canceled task {task_id}.")
    assert_stopped_by(svc, task_id, "dave", mysql_url, "seq_1_to_100000000000")
    events = svc.detail(task_id).events
    assert next(e.comment for e in events if e.action == "cancel").endswith("wrong filter")
    rc = cli.main(["--addr", svc.addr, "--user", "dave", "watch", task_id])
    assert rc == cli.EXIT_FAILED and "canceled by dave" in capsys.readouterr().out


@pytest.mark.postgres
def test_only_the_submitter_or_an_approver_stops_a_running_export(
    start_service: Start, pg_url: Any, tmp_path: Path
) -> None:
    svc = start_service(config_with(tmp_path, pg=pg_url))
    task_id = start_running(svc, "pg", PG_SLOW, pg_url, "generate_series(1, 3000000000)")
    with pytest.raises(grpc.RpcError) as info:
        svc.as_user("mallory").Cancel(pb.CancelRequest(task_id=int(task_id), operator="mallory"))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "or an approver" in info.value.details()
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_EXECUTING
    svc.as_user("dave").Cancel(pb.CancelRequest(task_id=int(task_id), operator="dave"))
    assert_stopped_by(svc, task_id, "dave", pg_url, "generate_series(1, 3000000000)")
    with pytest.raises(grpc.RpcError) as again:  # a canceled task stays canceled
        svc.as_user("dave").Cancel(pb.CancelRequest(task_id=int(task_id), operator="dave"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.postgres
def test_canceling_a_schedule_stops_its_running_firing_and_every_later_one(
    start_service: Start, pg_url: Any, tmp_path: Path
) -> None:
    clock = Clock()
    svc = start_service(config_with(tmp_path, pg=pg_url), clock=clock)
    schedule = pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *", channel="C")
    resp = svc.submit("dave", sql=PG_SLOW, dsn="pg", schedule=schedule)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    task_id = resp.task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    clock.to_next_minute()
    assert len(svc.service.scheduler.tick()) == 1
    marker = "generate_series(1, 3000000000)"
    wait_until("the firing's statement", lambda: bool(running_queries(pg_url, marker)))
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_APPROVED  # a schedule stays so

    svc.as_user("alice").Cancel(pb.CancelRequest(task_id=int(task_id), operator="alice"))
    assert_stopped_by(svc, task_id, "alice", pg_url, marker)
    clock.to_next_minute()
    assert svc.service.scheduler.tick() == []  # the schedule is over
    assert len(runs(svc, task_id)) == 1


@pytest.mark.postgres
def test_a_cancel_through_another_replica_stops_the_run(
    fresh_pg_url: Any, pg_url: Any, tmp_path: Path, start_service: Start
) -> None:
    # (the task store's database first: it is dropped after the services have stopped)
    store = fresh_pg_url.render_as_string(hide_password=False)
    first = start_service(config_with(tmp_path / "a", store, pg=pg_url))
    second = start_service(config_with(tmp_path / "b", store, pg=pg_url))
    marker = "generate_series(1, 3000000000)"
    task_id = start_running(first, "pg", PG_SLOW, pg_url, marker)  # approved on the first
    second.as_user("dave").Cancel(pb.CancelRequest(task_id=int(task_id), operator="dave"))
    assert_stopped_by(first, task_id, "dave", pg_url, marker)
    assert settled(second, task_id, 1)[0].error == "canceled by dave"


@pytest.mark.postgres
def test_an_export_queued_behind_another_is_canceled_too(
    start_service: Start, pg_url: Any, tmp_path: Path
) -> None:
    config = config_with(tmp_path, pg=pg_url)
    config["export"] = {"workers": 1}
    svc = start_service(config)
    marker = "generate_series(1, 3000000000)"
    running = start_running(svc, "pg", PG_SLOW, pg_url, marker)
    queued = svc.submit("dave", sql=PG_SLOW.replace("% 7 = 3", "% 7 = 4"), dsn="pg").task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(queued), approver="alice"))
    assert svc.detail(queued).task.status == pb.TASK_STATUS_EXECUTING  # waits for the worker

    svc.as_user("dave").Cancel(pb.CancelRequest(task_id=int(queued), operator="dave"))
    svc.as_user("dave").Cancel(pb.CancelRequest(task_id=int(running), operator="dave"))
    assert_stopped_by(svc, running, "dave", pg_url, marker)
    assert_stopped_by(svc, queued, "dave", pg_url, "% 7 = 4")
