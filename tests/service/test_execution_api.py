"""Execute, WatchTask, GetDownloadUrl and PreSign over the real API, files over real HTTP."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import requests

from service.domain.model import TaskStatus
from service.store.models import RunRow
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2 as upload_pb

ORDERS_SQL = "SELECT id, order_no, amount, remark FROM orders ORDER BY id"


DONE = {pb.TASK_STATUS_EXECUTE_SUCCESS, pb.TASK_STATUS_EXECUTE_FAILED}


def download_rows(svc, task_id: str) -> tuple[list[list[str]], requests.Response]:  # type: ignore[no-untyped-def]
    link = svc.as_user("zoe").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id))
    assert link.url.startswith("http") and link.filename.endswith(".csv")
    assert link.expire_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC) + timedelta(hours=23)
    resp = requests.get(link.url, timeout=10)
    assert resp.status_code == 200
    assert link.filename in resp.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8"), newline=""))), resp


def test_auto_executor_runs_after_approval_and_links_the_file(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit("zoe", sql=ORDERS_SQL).task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    detail = svc.wait_for_status(task_id, DONE)
    assert detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS, detail.runs[0].error
    run = detail.runs[0]
    assert run.executor == "auto" and run.rows == 8 and run.bytes > 0 and run.end_time.seconds
    assert run.filename.startswith("shop_task") and run.filename.endswith(".csv")
    rows, _ = download_rows(svc, task_id)
    assert rows[0] == ["id", "order_no", "amount", "remark"]
    # NUMERIC affinity: SQLite stores 199.00 as 199
    assert rows[1] == ["1", "9007199254740993", "199", "首单"]
    assert rows[5][3] == "multi\nline"
    assert len(rows) == 9
    actions = [e.action for e in detail.events]
    assert actions[-3:] == ["approved", "execute", "run_succeeded"]


def test_committer_executes_and_watches_progress_to_the_end(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit("zoe", sql=ORDERS_SQL, exector=pb.EXEC_COMMITTER).task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_APPROVED  # waits for the submitter
    resp = svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="zoe"))
    assert resp.ok and resp.run_id.isdigit()
    updates = list(svc.as_user("zoe").WatchTask(pb.WatchTaskRequest(task_id=task_id)))
    assert updates and updates[-1].status == pb.TASK_STATUS_EXECUTE_SUCCESS
    assert updates[-1].rows == 8 and updates[-1].run_id == resp.run_id
    assert all(u.task_id == task_id for u in updates)
    code = None
    try:
        svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="zoe"))
    except grpc.RpcError as exc:
        code = exc.code()
    assert code == grpc.StatusCode.FAILED_PRECONDITION  # one approval, one export
    roles = svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest(role=pb.TASK_ROLE_EXECUTED))
    assert [t.id for t in roles.data] == [task_id]


def test_approver_executes_when_exec_approver(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit(
        "zoe",
        tables=[{"table": "customers", "fields": ["id", "name"], "filter": "city IS NOT NULL"}],
        exector=pb.EXEC_APPROVER,
    ).task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    with pytest.raises(grpc.RpcError) as info:
        svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="zoe"))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    svc.as_user("bob").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="bob"))
    detail = svc.wait_for_status(task_id, DONE)
    assert detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS, detail.runs[0].error
    rows, _ = download_rows(svc, task_id)
    assert rows[0] == ["id", "name"] and len(rows) == 6  # Wang Fang's city is NULL
    assert "customers" in detail.runs[0].filename


def test_a_failing_export_records_its_reason_and_can_be_retried(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit(
        "zoe", sql="SELECT * FROM no_such_table", exector=pb.EXEC_COMMITTER
    ).task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="zoe"))
    detail = svc.wait_for_status(task_id, DONE)
    assert detail.task.status == pb.TASK_STATUS_EXECUTE_FAILED
    assert "no_such_table" in detail.runs[0].error
    assert "\n" not in detail.runs[0].error
    with pytest.raises(grpc.RpcError) as info:
        svc.as_user("zoe").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A failed export may be executed again: a second run, newest first.
    svc.as_user("zoe").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="zoe"))
    detail = svc.wait_for_status(task_id, DONE)
    assert len(detail.runs) == 2 and int(detail.runs[0].id) > int(detail.runs[1].id)


def test_download_url_of_a_specific_run_and_its_bounds(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit("zoe", sql="SELECT 1 AS one").task_id
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    run_id = svc.wait_for_status(task_id, DONE).runs[0].id
    zoe = svc.as_user("zoe")
    link = zoe.GetDownloadUrl(
        pb.GetDownloadUrlRequest(task_id=task_id, run_id=run_id, expires_in=120)
    )
    assert link.expire_time.ToDatetime(tzinfo=UTC) < datetime.now(UTC) + timedelta(seconds=130)
    capped = zoe.GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id, expires_in=10**9))
    assert capped.expire_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC) + timedelta(
        days=7, seconds=5
    )
    for req, code in (
        (pb.GetDownloadUrlRequest(task_id=task_id, run_id="999999"), grpc.StatusCode.NOT_FOUND),
        (pb.GetDownloadUrlRequest(task_id=task_id, run_id="x"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            pb.GetDownloadUrlRequest(task_id=task_id, expires_in=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (pb.GetDownloadUrlRequest(task_id="424242"), grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.RpcError) as info:
            zoe.GetDownloadUrl(req)
        assert info.value.code() == code
    tampered = link.url.replace("sig=", "sig=0")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_watch_of_a_task_without_a_run_reports_once(svc) -> None:  # type: ignore[no-untyped-def]
    task_id = svc.submit("zoe", sql="SELECT 1 AS one").task_id
    assert list(svc.as_user("zoe").WatchTask(pb.WatchTaskRequest(task_id=task_id))) == []
    with pytest.raises(grpc.RpcError) as info:
        list(svc.as_user("zoe").WatchTask(pb.WatchTaskRequest(task_id="nope")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_run_abandoned_by_a_dead_process_is_failed_on_start(store_url, start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(store_url=store_url)
    task_id = int(svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id)
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    # What a process killed mid-export leaves behind: the task EXECUTING, its run open,
    # its heartbeat going stale.
    with svc.service.store.write() as tx:
        tx.set_status(task_id, TaskStatus.EXECUTING, expected={TaskStatus.APPROVED})
        run_id = tx.add_run(task_id, "zoe", owner="dead-process")
        tx.s.get(RunRow, run_id).heartbeat_at = datetime.now(UTC) - timedelta(hours=1)
    svc.service.stop(grace_s=1)
    again = start_service(svc.service.config.model_dump(mode="json"))
    detail = again.detail(str(task_id))
    assert detail.task.status == pb.TASK_STATUS_EXECUTE_FAILED
    assert "service stopped during the export" in detail.runs[0].error
    assert detail.events[-1].action == "run_failed"


def test_presign_gives_a_put_link_for_a_new_object(svc) -> None:  # type: ignore[no-untyped-def]
    stub = svc.upload_stub()
    resp = stub.PreSign(
        upload_pb.PreSignRequest(filename="../../etc/报表 2027.csv", content_type="text/csv"),
        timeout=10,
    )
    assert resp.object_key.startswith("uploads/") and ".." not in resp.object_key
    assert resp.expire_time.seconds > time.time()
    put = requests.put(
        resp.url, data=b"a,b\r\n1,2\r\n", headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert put.status_code in (200, 201, 204)
    assert svc.service.objects.exists(resp.object_key)
    again = stub.PreSign(upload_pb.PreSignRequest(filename="a.csv"), timeout=10)
    assert again.object_key != resp.object_key
