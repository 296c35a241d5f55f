"""Faults with real processes and servers: a killed service, a restarted PostgreSQL, an
object store that goes away, a Slack that refuses or rate-limits. Nothing stays stuck,
nothing is published half, nothing is lost or doubled."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from fault_support import (
    FaultyProxy,
    ServiceProcess,
    reliability_config,
    restart_postgres,
    slow_sql,
    wait_for,
)
from slack_sdk import WebClient
from slack_standin import TOKEN, SlackStandIn

from bot.delivery import Delivery
from bot.service_client import ServiceClient
from service.app.runs import STOPPED_MESSAGE
from service.config import parse_config
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

S = pb.TaskStatus


def status_of(svc: ServiceProcess, task_id: str) -> int:
    return svc.detail(task_id).task.status


def approve(svc: ServiceProcess, task_id: str, approver: str = "alice") -> pb.ApproveResponse:
    return svc.caller(approver).Approve(pb.ApproveRequest(task_id=int(task_id), approver=approver))


def finished(svc: ServiceProcess, task_id: str) -> pb.GetTaskDetailResponse | None:
    try:
        d = svc.detail(task_id)
    except grpc.RpcError:  # the store may be coming back
        return None
    return (
        d
        if d.task.status in (S.TASK_STATUS_EXECUTE_SUCCESS, S.TASK_STATUS_EXECUTE_FAILED)
        else None
    )


def query_running(store_or_source: str, marker: str = "generate_series") -> bool:
    engine = sa.create_engine(store_or_source)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND datname = current_database() "
                        "AND query LIKE :m AND pid <> pg_backend_pid()"
                    ),
                    {"m": f"%{marker}%"},
                ).scalar()
            )
    finally:
        engine.dispose()


def local_files(svc: ServiceProcess) -> list[Path]:
    """Objects published by the local store (sidecars and uploads in progress aside)."""
    root = Path(svc.config["server"]["data_dir"]) / "files" / "objects"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# -- kill -9 --------------------------------------------------------------------------------


def test_killed_service_mid_export_fails_the_run_with_its_reason_and_can_run_again(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
    no_orphan_queries: None,
) -> None:
    svc = service_process(reliability_config(tmp_path, scratch_store, pg_source))
    sub = svc.submit_sql("sam", "pg", slow_sql(40))
    assert sub.ok, sub
    approve(svc, sub.task_id)
    assert status_of(svc, sub.task_id) == S.TASK_STATUS_EXECUTING
    wait_for(lambda: query_running(pg_source), what="the export's query running")

    svc.kill()
    svc.start()

    # The dead process's heartbeat goes stale (3 s) and the new one fails the run.
    done = wait_for(lambda: finished(svc, sub.task_id), timeout=20, what="the run recovered")
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert len(done.runs) == 1 and done.runs[0].status == S.TASK_STATUS_EXECUTE_FAILED
    assert done.runs[0].error == STOPPED_MESSAGE
    assert done.runs[0].filename == ""
    assert local_files(svc) == []

    again = svc.caller("sam").Execute(pb.ExecuteRequest(task_id=int(sub.task_id), executor="sam"))
    assert again.ok
    done = wait_for(
        lambda: (d := finished(svc, sub.task_id)) and len(d.runs) == 2 and d,
        timeout=60,
        what="the second run",
    )
    assert done.task.status == S.TASK_STATUS_EXECUTE_SUCCESS, done.runs[0].error
    assert [p.name for p in local_files(svc)] == [done.runs[0].filename]


def test_killed_service_during_a_scheduled_firing_fails_that_run_and_the_schedule_goes_on(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
    no_orphan_queries: None,
) -> None:
    config = reliability_config(
        tmp_path, scratch_store, pg_source, scheduler={"enabled": True, "tick_s": 0.5}
    )
    svc = service_process(config)
    schedule = pb.Schedule(
        trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *", timezone="UTC", channel="C_REPORTS"
    )
    sub = svc.submit_sql("sam", "pg", slow_sql(400), schedule=schedule)
    assert sub.ok, svc.detail(sub.task_id).precheck_messages
    approve(svc, sub.task_id)
    wait_for(lambda: query_running(pg_source), timeout=75, what="the first firing's query")
    first = svc.detail(sub.task_id).runs[0]

    svc.kill()
    svc.start()

    def recovered() -> pb.TaskRun | None:
        runs = {r.id: r for r in svc.detail(sub.task_id).runs}
        run = runs.get(first.id)
        return run if run and run.status == S.TASK_STATUS_EXECUTE_FAILED else None

    run = wait_for(recovered, timeout=20, what="the killed firing's run recovered")
    assert "the next firing runs as usual" in run.error and run.filename == ""
    assert local_files(svc) == []
    detail = svc.detail(sub.task_id)
    assert detail.task.status == S.TASK_STATUS_APPROVED  # the schedule itself lives on

    # The next firing runs, once.
    nxt = wait_for(
        lambda: [r for r in svc.detail(sub.task_id).runs if int(r.id) > int(first.id)],
        timeout=75,
        what="the next firing",
    )
    assert len(nxt) == 1 and nxt[0].status == S.TASK_STATUS_EXECUTING
    svc.caller("sam").Cancel(pb.CancelRequest(task_id=int(sub.task_id), operator="sam"))


def test_killed_service_during_votes_leaves_every_vote_whole_and_each_task_consistent(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
) -> None:
    config = reliability_config(tmp_path, scratch_store, pg_source)
    config["datasources"]["pg"]["required_approvals"] = 2
    svc = service_process(config)
    voters = ["alice", "bob", "carol", "dave"]
    tasks = [
        svc.submit_sql("sam", "pg", "SELECT id FROM rel_orders", exector=pb.EXEC_COMMITTER).task_id
        for _ in range(12)
    ]
    accepted: list[tuple[str, str]] = []
    answered = threading.Event()
    lock = threading.Lock()

    def vote(task_id: str, voter: str) -> None:
        try:
            if approve(svc, task_id, voter).ok:
                with lock:
                    accepted.append((task_id, voter))
        except grpc.RpcError:
            pass  # refused (quorum reached) or cut off by the kill
        answered.set()

    threads = [threading.Thread(target=vote, args=(t, v)) for t in tasks for v in voters]
    for t in threads:
        t.start()
    answered.wait(10)  # mid-burst: the first answers are back, others are in flight
    svc.kill()
    for t in threads:
        t.join(30)
    svc.start()

    engine = sa.create_engine(scratch_store)
    try:
        with engine.connect() as conn:

            def rows(sql: str) -> list[Any]:
                return list(conn.execute(sa.text(sql)))

            votes = Counter((str(r.task_id), r.voter) for r in rows("SELECT * FROM task_votes"))
            events = rows("SELECT * FROM task_events")
            vote_events = Counter(
                (str(e.task_id), e.actor) for e in events if e.action == "approve"
            )
            approved_events = Counter(str(e.task_id) for e in events if e.action == "approved")
            notes = rows("SELECT * FROM notifications")
            statuses = {str(r.id): r.status for r in rows("SELECT id, status FROM tasks")}
    finally:
        engine.dispose()

    assert votes == vote_events, "a vote without its event, or an event without its vote"
    assert all(n == 1 for n in votes.values())
    assert set(accepted) <= set(votes), "an acknowledged vote was lost"
    for task_id in tasks:
        count = sum(1 for (t, _) in votes if t == task_id)
        assert count <= 2
        expected = S.TASK_STATUS_APPROVED if count == 2 else S.TASK_STATUS_APPROVING
        assert statuses[task_id] == expected, (task_id, count)
        assert approved_events[task_id] == (1 if count == 2 else 0)
        kinds = Counter(n.kind for n in notes if str(n.task_id) == task_id)
        assert kinds["approved"] == approved_events[task_id]
        assert kinds["vote"] + kinds["approved"] == count

    # The restarted service takes the remaining votes.
    for task_id in tasks:
        for voter in voters:
            if statuses[task_id] != S.TASK_STATUS_APPROVED and (task_id, voter) not in votes:
                assert approve(svc, task_id, voter).ok
                statuses[task_id] = status_of(svc, task_id)
        assert statuses[task_id] == S.TASK_STATUS_APPROVED


# -- PostgreSQL restarted -------------------------------------------------------------------


def test_postgres_restart_mid_run_fails_the_run_and_the_service_keeps_serving(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
    no_orphan_queries: None,
) -> None:
    svc = service_process(reliability_config(tmp_path, scratch_store, pg_source))
    sub = svc.submit_sql("sam", "pg", slow_sql(40))
    approve(svc, sub.task_id)
    wait_for(lambda: query_running(pg_source), what="the export's query running")

    restart_postgres(down_s=2)  # task store and datasource both go away

    done = wait_for(lambda: finished(svc, sub.task_id), timeout=30, what="the run ended")
    run = done.runs[0]
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert run.status == S.TASK_STATUS_EXECUTE_FAILED
    assert "export failed" in run.error or "connection" in run.error.lower(), run.error

    quick = svc.submit_sql("sam", "pg", "SELECT id, customer FROM rel_orders ORDER BY id")
    assert quick.ok
    approve(svc, quick.task_id)
    done = wait_for(lambda: finished(svc, quick.task_id), timeout=30, what="a run after restart")
    assert done.task.status == S.TASK_STATUS_EXECUTE_SUCCESS, done.runs[0].error
    assert done.runs[0].rows == 200
    listed = svc.caller("sam").ListTaskDetail(pb.ListTaskRequest(current=1, page_size=10))
    assert listed.total == 2


# -- the object store -----------------------------------------------------------------------


def test_object_store_down_mid_run_fails_naming_the_store_and_a_retry_publishes_once(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
    restartable_s3: Any,
    no_orphan_queries: None,
) -> None:
    s3 = restartable_s3
    config = reliability_config(
        tmp_path,
        scratch_store,
        pg_source,
        storage={"backend": "s3", "s3": {"bucket": s3.bucket, "endpoint_url": s3.endpoint}},
    )
    svc = service_process(config)
    sub = svc.submit_sql("sam", "pg", slow_sql(25))
    approve(svc, sub.task_id)
    wait_for(lambda: query_running(pg_source), what="the export's query running")
    s3.stop()
    try:
        done = wait_for(lambda: finished(svc, sub.task_id), timeout=60, what="the run failed")
    finally:
        s3.start()
    run = done.runs[0]
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert f"S3 bucket '{s3.bucket}'" in run.error and s3.endpoint in run.error, run.error
    assert s3.keys() == []
    assert s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []

    svc.caller("sam").Execute(pb.ExecuteRequest(task_id=int(sub.task_id), executor="sam"))
    done = wait_for(
        lambda: (d := finished(svc, sub.task_id)) and len(d.runs) == 2 and d,
        timeout=60,
        what="the retried run",
    )
    assert done.task.status == S.TASK_STATUS_EXECUTE_SUCCESS, done.runs[0].error
    (key,) = s3.keys()
    assert key.endswith(f"/runs/{done.runs[0].id}/{done.runs[0].filename}")
    link = svc.caller("sam").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=sub.task_id))
    assert link.url.startswith(s3.endpoint)


# -- Slack ----------------------------------------------------------------------------------


@pytest.fixture
def slack_behind_proxy() -> Any:
    standin = SlackStandIn().start()
    proxy = FaultyProxy(standin.url).up()
    yield standin, proxy
    proxy.down()
    standin.stop()


def _in_process_service(tmp_path: Path, store_url: str, source_url: str) -> Service:
    config = reliability_config(tmp_path, store_url, source_url)
    config["server"]["token"] = "service-token"
    service = Service(parse_config(config), listen="127.0.0.1:0")
    service.start()
    return service


@pytest.mark.parametrize("fault", ["down", "429", "500", "500-html"])
def test_slack_refusing_or_failing_gets_each_message_posted_exactly_once(
    fault: str,
    slack_behind_proxy: Any,
    tmp_path: Path,
    scratch_store: str,
    pg_source: str,
) -> None:
    standin, proxy = slack_behind_proxy
    service = _in_process_service(tmp_path, scratch_store, pg_source)
    client = ServiceClient(f"127.0.0.1:{service.port}", "service-token")
    web = WebClient(token=TOKEN, base_url=proxy.url + "/api/")
    delivery = Delivery(web, client, "bot-faults", poll_interval_s=0.05, lease_s=60)
    try:
        if fault == "down":
            proxy.down()
        elif fault == "429":
            proxy.fail_next(429, times=3, retry_after=1)
        elif fault == "500":
            proxy.fail_next(500, times=2)
        else:
            proxy.fail_next(500, times=2, body=b"<html>upstream error</html>")
        delivery.start()
        req = pb.SubmitTaskRequest(
            kind=pb.TASK_KIND_DATA_EXPORT,
            dsn="pg",
            ded=pb.DataExportDetail(
                ebs=pb.ExportBySQL(statement="SELECT id FROM rel_orders"), export_reason="r"
            ),
        )
        task_id = client.submit("sam", req).task_id
        client.approve("alice", int(task_id))
        if fault == "down":
            time.sleep(3)
            proxy.up()

        def everything_posted() -> bool:
            posted = standin.of("chat.postMessage")
            channels = Counter(str(c.params.get("channel")) for c in posted)
            return channels["C_APPROVALS"] >= 1 and channels["sam"] >= 2

        wait_for(everything_posted, timeout=40, what="every message posted after the fault")
        time.sleep(1.5)  # anything doubled would show by now
        posted = Counter(
            (str(c.params.get("channel")), c.params.get("text", "")[:20])
            for c in standin.of("chat.postMessage")
        )
        # approval request (C_APPROVALS), decision DM and run result (DM sam): once each.
        per_channel = Counter(ch for ch, _ in posted.elements())
        assert per_channel == {"C_APPROVALS": 1, "sam": 2}, standin.of("chat.postMessage")
        assert all(m.blocks for m in standin.in_channel("C_APPROVALS"))
        result = [m for m in standin.dm("sam") if "rows" in m.text.lower() or m.updates]
        assert result, [m.text for m in standin.dm("sam")]
        if fault != "down":
            assert any(status >= 429 for _, status in proxy.seen)
        wait_for(lambda: not _pending(service), what="outbox drained")
    finally:
        delivery.stop(10)
        client.close()
        service.stop(grace_s=2)


def _pending(service: Any) -> int:
    with service.store.read() as tx:
        return int(
            tx.s.execute(
                sa.text("SELECT count(*) FROM notifications WHERE delivered_at IS NULL")
            ).scalar()
        )
