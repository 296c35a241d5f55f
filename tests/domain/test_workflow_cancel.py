"""Who may cancel a task, and when: the submitter before it runs; while it runs, the
submitter or an approver of its datasource; never once it has ended."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain import workflow
from service.domain.errors import PermissionDenied, WrongState
from service.domain.model import ExportSpec, Schedule, Task, TaskKind, TaskStatus

S = TaskStatus
APPROVERS = frozenset({"alice"})


def task(status: TaskStatus) -> Task:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    return Task(
        id=7, name="t", kind=TaskKind.DATA_EXPORT, datasource="shop", submitter="dave",
        status=status, spec=ExportSpec(statement="SELECT 1"), schedule=Schedule(),
        created_at=now, updated_at=now,
    )  # fmt: skip


@pytest.mark.parametrize("actor", ["dave", "alice"])
def test_a_running_export_is_stopped_by_its_submitter_or_an_approver(actor: str) -> None:
    workflow.check_can_cancel(task(S.EXECUTING), actor, APPROVERS, running=True)


def test_an_executing_task_is_running_for_an_approver_without_being_told() -> None:
    workflow.check_can_cancel(task(S.EXECUTING), "alice", APPROVERS)


def test_anyone_else_may_not_stop_a_running_export() -> None:
    with pytest.raises(PermissionDenied, match="or an approver of datasource 'shop'"):
        workflow.check_can_cancel(task(S.EXECUTING), "mallory", APPROVERS, running=True)


def test_before_it_runs_canceling_is_the_submitters_alone() -> None:
    workflow.check_can_cancel(task(S.APPROVED), "dave", APPROVERS)
    with pytest.raises(PermissionDenied, match="only the submitter"):
        workflow.check_can_cancel(task(S.APPROVED), "alice", APPROVERS)


@pytest.mark.parametrize("status", [S.EXECUTE_SUCCESS, S.EXECUTE_FAILED, S.CANCELED])
def test_an_ended_task_cannot_be_canceled(status: TaskStatus) -> None:
    with pytest.raises(WrongState, match="can no longer be canceled"):
        workflow.check_can_cancel(task(status), "dave", APPROVERS)


def test_executing_leads_to_canceled() -> None:
    assert S.CANCELED in workflow.TRANSITIONS[S.EXECUTING]
    assert S.EXECUTING in workflow.CANCELABLE
