"""Races lose cleanly: on the PostgreSQL task store, over a real socket, many rounds of two
requests at the same moment each end in one state, with the events and notifications of
the winners only; a loser gets FAILED_PRECONDITION naming the task's real state."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from service_support import Running

from service.store.models import NotificationRow
from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.postgres

ROUNDS = 25
SETTLED = {
    pb.TASK_STATUS_CANCELED,
    pb.TASK_STATUS_APPROVED,
    pb.TASK_STATUS_EXECUTE_SUCCESS,
    pb.TASK_STATUS_EXECUTE_FAILED,
    pb.TASK_STATUS_APPROVING,
}


@pytest.fixture
def pg_svc(fresh_pg_url, start_service) -> Running:  # type: ignore[no-untyped-def]
    return start_service(store_url=fresh_pg_url.render_as_string(hide_password=False))


def _both(first: Callable[[], Any], second: Callable[[], Any]) -> list[grpc.RpcError | None]:
    """Run two calls at the same moment (each after a random few milliseconds); for each,
    None when it succeeded, else its error."""
    barrier = threading.Barrier(2)
    outcome: list[grpc.RpcError | None] = [None, None]

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        time.sleep(random.uniform(0, 0.004))
        try:
            call()
        except grpc.RpcError as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome


def _notifications(svc: Running, task_id: int) -> list[str]:
    with svc.service.store.read() as tx:
        return list(
            tx.s.scalars(
                sa.select(NotificationRow.kind)
                .where(NotificationRow.task_id == task_id)
                .order_by(NotificationRow.id)
            )
        )


def _actions(detail: pb.GetTaskDetailResponse) -> list[str]:
    return [e.action for e in detail.events]


def _assert_lost_cleanly(error: grpc.RpcError | None, *states: int) -> None:
    """FAILED_PRECONDITION naming the state the task was in when the call lost."""
    assert error is not None
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION, error.details()
    names = [
        pb.TaskStatus.Name(s).removeprefix("TASK_STATUS_").replace("_", " ").lower() for s in states
    ]
    assert any(f" is {name}" in (error.details() or "") for name in names), error.details()


def test_cancel_during_the_pre_check_leaves_one_story(
    pg_svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = pg_svc.service.tasks
    precheck = tasks._precheck
    started: list[threading.Event] = []

    def precheck_taking_a_moment(*args: Any) -> list[str]:
        started[-1].set()
        time.sleep(random.uniform(0, 0.01))  # the window a cancel may land in
        return precheck(*args)

    monkeypatch.setattr(tasks, "_precheck", precheck_taking_a_moment)
    zoe = pg_svc.as_user("zoe")
    seen = set()
    for _ in range(ROUNDS):
        started.append(threading.Event())
        submitted: dict[str, Any] = {}

        def submit() -> None:
            submitted["response"] = pg_svc.submit("zoe", sql="SELECT 1 AS one")

        def cancel_once_recorded() -> None:
            assert started[-1].wait(10)
            newest = zoe.ListTaskDetail(
                pb.ListTaskRequest(role=pb.TASK_ROLE_COMMITTER, page_size=1)
            ).data[0]
            submitted["task_id"] = int(newest.id)
            zoe.Cancel(pb.CancelRequest(task_id=int(newest.id), operator="zoe"))

        submit_error, cancel_error = _both(submit, cancel_once_recorded)
        assert cancel_error is None, cancel_error
        task_id = submitted["task_id"]
        detail = pg_svc.detail(str(task_id))
        assert detail.task.status == pb.TASK_STATUS_CANCELED
        if submit_error is None:  # the pre-check finished first; the cancel came after it
            assert submitted["response"].ok
            assert _actions(detail) == ["submit", "precheck_passed", "cancel"]
            assert _notifications(pg_svc, task_id) == ["approval_requested", "canceled"]
            seen.add("pre-check first")
        else:  # the cancel won: the pre-check's outcome was never written
            _assert_lost_cleanly(submit_error, detail.task.status)
            assert _actions(detail) == ["submit", "cancel"]
            assert _notifications(pg_svc, task_id) == ["canceled"]
            seen.add("cancel first")
    assert "cancel first" in seen  # the race was really run, not always won by the pre-check


def test_approve_against_cancel_ends_in_one_state(pg_svc: Running) -> None:
    for _ in range(ROUNDS):
        task_id = int(
            pg_svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id
        )
        approve_error, cancel_error = _both(
            lambda: pg_svc.as_user("bob").Approve(
                pb.ApproveRequest(task_id=task_id, approver="bob")
            ),
            lambda: pg_svc.as_user("zoe").Cancel(pb.CancelRequest(task_id=task_id, operator="zoe")),
        )
        detail = pg_svc.detail(str(task_id))
        actions = _actions(detail)[2:]  # after submit, precheck_passed
        notes = _notifications(pg_svc, task_id)[1:]  # after approval_requested
        assert cancel_error is None  # cancel is allowed before and after the approval
        assert detail.task.status == pb.TASK_STATUS_CANCELED
        if approve_error is None:
            assert actions == ["approve", "approved", "cancel"]
            assert notes == ["approved", "canceled"]
        else:
            _assert_lost_cleanly(approve_error, detail.task.status)
            assert actions == ["cancel"] and notes == ["canceled"]


def test_execute_against_cancel_ends_in_one_state(pg_svc: Running) -> None:
    """Cancel may stop a running export, so either may come first: the cancel before the
    run (no run), during it (the run canceled), or after it finished (the cancel loses)."""
    seen = set()
    for _ in range(ROUNDS):
        task_id = int(
            pg_svc.submit("zoe", sql="SELECT 1 AS one", exector=pb.EXEC_COMMITTER).task_id
        )
        pg_svc.as_user("bob").Approve(pb.ApproveRequest(task_id=task_id, approver="bob"))
        zoe = pg_svc.as_user("zoe")
        execute_error, cancel_error = _both(
            lambda: zoe.Execute(pb.ExecuteRequest(task_id=task_id, executor="zoe")),
            lambda: zoe.Cancel(pb.CancelRequest(task_id=task_id, operator="zoe")),
        )
        detail = pg_svc.wait_for_status(str(task_id), SETTLED)
        while detail.runs and detail.runs[0].status == pb.TASK_STATUS_EXECUTING:
            time.sleep(0.02)
            detail = pg_svc.detail(str(task_id))
        actions = _actions(detail)[4:]  # after submit, precheck_passed, approve, approved
        notes = _notifications(pg_svc, task_id)[2:]  # after approval_requested, approved
        assert (execute_error is None) or (cancel_error is None)
        if execute_error is not None:  # the cancel came first
            _assert_lost_cleanly(execute_error, detail.task.status)
            assert detail.task.status == pb.TASK_STATUS_CANCELED and not detail.runs
            assert actions == ["cancel"] and notes == ["canceled"]
            seen.add("cancel first")
        elif cancel_error is not None:  # the run had finished: nothing left to cancel
            _assert_lost_cleanly(cancel_error, detail.task.status)
            assert "cancel" not in actions and "canceled" not in notes
            assert actions[0] == "execute" and notes[0] == "run_started"
            assert len(detail.runs) == 1
            seen.add("run finished first")
        else:  # canceled while it ran: the run ends canceled, nothing published
            assert detail.task.status == pb.TASK_STATUS_CANCELED
            (run,) = detail.runs
            assert (run.status, run.error) == (pb.TASK_STATUS_CANCELED, "canceled by zoe")
            assert actions == ["execute", "cancel", "run_canceled"]
            assert notes == ["run_started", "canceled", "run_finished"]
            seen.add("canceled while running")
    assert seen - {"cancel first"}, seen  # the run started first at least once
