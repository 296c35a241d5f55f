"""Atomic state changes under real concurrent calls on the PostgreSQL task store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.postgres

APPROVERS = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture
def pg_svc(fresh_pg_url, start_service):  # type: ignore[no-untyped-def]
    return start_service(
        store_url=fresh_pg_url.render_as_string(hide_password=False), shop={"required_approvals": 2}
    )


def _race(calls):  # type: ignore[no-untyped-def]
    """Run the calls at the same moment; return (successes, status codes of failures)."""
    barrier = threading.Barrier(len(calls))
    ok: list[int] = []
    failed: list[grpc.StatusCode] = []
    lock = threading.Lock()

    def run(call):  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            call()
            with lock:
                ok.append(1)
        except grpc.RpcError as exc:
            with lock:
                failed.append(exc.code())

    with ThreadPoolExecutor(len(calls)) as pool:
        list(pool.map(run, calls))
    return len(ok), failed


def test_twenty_parallel_approvals_by_five_approvers_count_twice(pg_svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(pg_svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id)
    calls = [
        (
            lambda who=who: pg_svc.as_user(who).Approve(
                pb.ApproveRequest(task_id=task_id, approver=who)
            )
        )
        for who in APPROVERS * 4
    ]
    ok, failed = _race(calls)
    detail = pg_svc.detail(str(task_id))
    assert detail.task.status == pb.TASK_STATUS_APPROVED
    assert len([e for e in detail.events if e.action == "approve"]) == 2
    assert len([e for e in detail.events if e.action == "approved"]) == 1
    assert ok == 2
    assert set(failed) == {grpc.StatusCode.FAILED_PRECONDITION} and len(failed) == 18


def test_concurrent_approve_and_reject_leave_exactly_one_outcome(pg_svc) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        task_id = int(
            pg_svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id
        )
        pg_svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
        ok, failed = _race(
            [
                lambda: pg_svc.as_user("bob").Approve(
                    pb.ApproveRequest(task_id=task_id, approver="bob")
                ),
                lambda: pg_svc.as_user("carol").Reject(
                    pb.RejectRequest(task_id=task_id, approver="carol")
                ),
            ]
        )
        detail = pg_svc.detail(str(task_id))
        decided = [e.action for e in detail.events if e.action in ("approved", "reject")]
        assert ok == 1 and failed == [grpc.StatusCode.FAILED_PRECONDITION]
        assert len(decided) == 1
        expected = (
            pb.TASK_STATUS_APPROVED if decided == ["approved"] else pb.TASK_STATUS_NOT_APPROVED
        )
        assert detail.task.status == expected


def test_cancel_racing_approval_leaves_one_outcome(pg_svc) -> None:  # type: ignore[no-untyped-def]
    task_id = int(pg_svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id)
    pg_svc.as_user("alice").Approve(pb.ApproveRequest(task_id=task_id, approver="alice"))
    ok, failed = _race(
        [
            lambda: pg_svc.as_user("bob").Approve(
                pb.ApproveRequest(task_id=task_id, approver="bob")
            ),
            lambda: pg_svc.as_user("zoe").Cancel(pb.CancelRequest(task_id=task_id, operator="zoe")),
        ]
    )
    status = pg_svc.detail(str(task_id)).task.status
    # Cancel is allowed from APPROVED too, so either order may let both succeed; the
    # outcome is one consistent state either way.
    assert status in (pb.TASK_STATUS_CANCELED, pb.TASK_STATUS_APPROVED)
    assert ok + len(failed) == 2
