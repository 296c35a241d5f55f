"""Who may cancel a task: its submitter before it runs; its submitter or an approver while
it runs (the run stops); nobody once it has ended."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.errors import PermissionDenied, WrongState
from service.domain.model import ExportSpec, Schedule, Task, TaskKind, TaskStatus
from service.domain.workflow import CANCELABLE, check_can_cancel

S = TaskStatus
APPROVERS = {"bob"}


def task(status: TaskStatus) -> Task:
    now = datetime.now(UTC)
    return Task(
        1, "t", TaskKind.DATA_IMPORT, "shop", "alice", status, ExportSpec(), Schedule(), now, now
    )


@pytest.mark.parametrize("status", [S.APPROVING, S.APPROVED])
def test_before_it_runs_only_the_submitter_cancels(status: TaskStatus) -> None:
    check_can_cancel(task(status), "alice", APPROVERS)
    with pytest.raises(PermissionDenied):
        check_can_cancel(task(status), "bob", APPROVERS)


def test_while_it_runs_the_submitter_or_an_approver_stops_it() -> None:
    assert S.EXECUTING in CANCELABLE
    check_can_cancel(task(S.EXECUTING), "alice", APPROVERS)
    check_can_cancel(task(S.EXECUTING), "bob", APPROVERS)
    with pytest.raises(PermissionDenied, match="or an approver"):
        check_can_cancel(task(S.EXECUTING), "mallory", APPROVERS)


@pytest.mark.parametrize("status", [S.EXECUTE_SUCCESS, S.EXECUTE_FAILED, S.CANCELED])
def test_an_ended_task_cannot_be_canceled(status: TaskStatus) -> None:
    with pytest.raises(WrongState):
        check_can_cancel(task(status), "alice", APPROVERS)
