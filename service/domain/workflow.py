"""The workflow state machine and who may do what: pure rules, no storage.

NOT_START → PRE_CHECK → PRE_CHECK_FAILED (final) | PRE_CHECK_SUCCESS → APPROVING;
APPROVING → NOT_APPROVED (final, any approver's reject) | APPROVED (quorum reached);
APPROVED → EXECUTING → EXECUTE_SUCCESS | EXECUTE_FAILED; CANCELED by the submitter from any
state before EXECUTING, and while EXECUTING by the submitter or an approver (the running
export is stopped, nothing is published). A CRON task stays APPROVED: each firing is a run,
not a state; canceling it ends the schedule and stops a firing that is running.
"""

from __future__ import annotations

from collections.abc import Collection

from service.domain.errors import PermissionDenied, WrongState
from service.domain.model import Executor, Task, TaskStatus

S = TaskStatus

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.NOT_START: frozenset({S.PRE_CHECK, S.CANCELED}),
    S.PRE_CHECK: frozenset({S.PRE_CHECK_FAILED, S.PRE_CHECK_SUCCESS, S.CANCELED}),
    S.PRE_CHECK_SUCCESS: frozenset({S.APPROVING, S.CANCELED}),
    S.PRE_CHECK_FAILED: frozenset(),
    S.APPROVING: frozenset({S.APPROVED, S.NOT_APPROVED, S.CANCELED}),
    S.APPROVED: frozenset({S.EXECUTING, S.CANCELED}),
    S.NOT_APPROVED: frozenset(),
    # A running task may be canceled: its run stops, and nothing is published or committed.
    S.EXECUTING: frozenset({S.EXECUTE_SUCCESS, S.EXECUTE_FAILED, S.CANCELED}),
    S.EXECUTE_SUCCESS: frozenset(),
    # A failed export may be started again by whoever may execute it (a new run).
    S.EXECUTE_FAILED: frozenset({S.EXECUTING}),
    S.CANCELED: frozenset(),
}

FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
CANCELABLE = frozenset(s for s, nxt in TRANSITIONS.items() if S.CANCELED in nxt)
EXECUTABLE = frozenset(s for s, nxt in TRANSITIONS.items() if S.EXECUTING in nxt)


def sources_of(target: TaskStatus) -> frozenset[TaskStatus]:
    """Every state from which `target` may be reached in one step."""
    return frozenset(s for s, nxt in TRANSITIONS.items() if target in nxt)


def status_label(status: TaskStatus) -> str:
    return status.name.replace("_", " ").lower()


def check_can_vote(task: Task, actor: str, approvers: Collection[str]) -> None:
    """Raise unless `actor` may approve or reject `task` now."""
    if actor == task.submitter:
        raise PermissionDenied(
            f"you submitted task {task.id}, so you cannot approve or reject it; "
            "ask another approver of the datasource"
        )
    if actor not in approvers:
        raise PermissionDenied(
            f"{actor} is not an approver of datasource {task.datasource!r}; "
            f"only its configured approvers can decide on task {task.id}"
        )
    if task.status is not S.APPROVING:
        raise WrongState(f"task {task.id} is {status_label(task.status)}, not waiting for approval")


def quorum_reached(approvals: int, required: int) -> bool:
    return approvals >= max(1, required)


def check_can_cancel(
    task: Task, actor: str, approvers: Collection[str] = (), *, running: bool = False
) -> None:
    """Raise unless `actor` may cancel `task` now. While an export of it runs (`running`:
    the task is EXECUTING, or a firing of its schedule is), an approver of the datasource
    may stop it too; before that, canceling is the submitter's own decision."""
    running = running or task.status is S.EXECUTING
    if actor != task.submitter and not (running and actor in approvers):
        if running:
            raise PermissionDenied(
                f"only the submitter ({task.submitter}) or an approver of datasource "
                f"{task.datasource!r} can cancel task {task.id} while it runs"
            )
        raise PermissionDenied(f"only the submitter ({task.submitter}) can cancel task {task.id}")
    if task.status not in CANCELABLE:
        raise WrongState(
            f"task {task.id} is {status_label(task.status)} and can no longer be canceled"
        )


def check_can_execute(task: Task, actor: str, approvers: Collection[str]) -> None:
    """Raise unless `actor` may start a run of `task` by hand now."""
    if task.schedule.is_cron:
        raise WrongState(
            f"task {task.id} runs on its schedule ({task.schedule.cron}); it is not started by hand"
        )
    if task.status not in EXECUTABLE:
        if task.status in (S.APPROVING, S.PRE_CHECK, S.PRE_CHECK_SUCCESS, S.NOT_START):
            raise WrongState(f"task {task.id} is not approved yet ({status_label(task.status)})")
        raise WrongState(f"task {task.id} is {status_label(task.status)} and cannot be executed")
    if not may_execute(task, actor, approvers):
        raise PermissionDenied(f"{actor} may not execute task {task.id}: {executor_rule(task)}")


def may_execute(task: Task, actor: str, approvers: Collection[str]) -> bool:
    mode = task.spec.executor
    if mode is Executor.COMMITTER:
        return actor == task.submitter
    if mode is Executor.APPROVER:
        return actor in approvers
    # AUTO runs by itself; a failed run may be retried by the submitter or an approver.
    return actor == task.submitter or actor in approvers


def executor_rule(task: Task) -> str:
    mode = task.spec.executor
    if mode is Executor.COMMITTER:
        return f"it is executed by its submitter ({task.submitter})"
    if mode is Executor.APPROVER:
        return f"it is executed by an approver of datasource {task.datasource!r}"
    return (
        "it runs by itself after approval; "
        "a failed run may be retried by the submitter or an approver"
    )
