"""The task store's repository: every read and every atomic state change of the workflow.

A unit of work is one transaction (`store.write()` / `store.read()`). State changes are
`UPDATE … WHERE status IN (:expected)` on a row locked first, so two clicks at the same
moment serialise and the second one sees the first one's outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from service.domain.errors import NotFound
from service.domain.model import (
    Backlog,
    ColumnGenerator,
    Content,
    Encoding,
    Event,
    Executor,
    ExportSpec,
    ExportType,
    GenerateSpec,
    ImportMode,
    ImportSpec,
    MessageRef,
    Notification,
    Page,
    Preview,
    Role,
    Run,
    RunStatus,
    Schedule,
    TableOption,
    Task,
    TaskKind,
    TaskQuery,
    TaskStatus,
    Trigger,
)
from service.store.db import WRITE_OPTION, create_store_engine, migrate
from service.store.models import (
    EventRow,
    MessageRefRow,
    NotificationRow,
    RunRow,
    TaskRow,
    VoteRow,
    utcnow,
)


def spec_to_json(spec: ExportSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["tables"] = [asdict(t) | {"fields": list(t.fields)} for t in spec.tables]
    for key in ("content", "type", "encoding", "executor"):
        data[key] = int(data[key])
    return data


def spec_from_json(data: dict[str, Any]) -> ExportSpec:
    return ExportSpec(
        database=data.get("database", ""),
        statement=data.get("statement", ""),
        export_all=bool(data.get("export_all", False)),
        tables=tuple(
            TableOption(
                table=t["table"],
                all_fields=bool(t.get("all_fields", True)),
                fields=tuple(t.get("fields", ())),
                filter=t.get("filter", ""),
            )
            for t in data.get("tables", ())
        ),
        content=Content(data.get("content", Content.DATA)),
        type=ExportType(data.get("type", ExportType.CSV)),
        encoding=Encoding(data.get("encoding", Encoding.UTF8)),
        reason=data.get("reason", ""),
        executor=Executor(data.get("executor", Executor.AUTO)),
    )


def import_to_json(spec: ImportSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["columns"] = list(spec.columns)
    for key in ("format", "encoding", "mode"):
        data[key] = int(data[key])
    return data


def import_from_json(data: dict[str, Any]) -> ImportSpec:
    return ImportSpec(
        table=data["table"],
        object_key=data["object_key"],
        format=ExportType(data.get("format", ExportType.CSV)),
        encoding=Encoding(data.get("encoding", Encoding.UTF8)),
        mode=ImportMode(data.get("mode", ImportMode.INSERT)),
        columns=tuple(data.get("columns", ())),
        no_header=bool(data.get("no_header", False)),
        sheet=data.get("sheet", ""),
    )


def generate_to_json(spec: GenerateSpec) -> dict[str, Any]:
    return {
        "table": spec.table,
        "rows": spec.rows,
        "seed": spec.seed,
        "mode": int(spec.mode),
        "columns": [
            {
                "column": g.column,
                "kind": g.kind,
                "params": dict(g.params),
                "null_ratio": g.null_ratio,
            }
            for g in spec.columns
        ],
    }


def generate_from_json(data: dict[str, Any]) -> GenerateSpec:
    return GenerateSpec(
        table=data["table"],
        rows=int(data["rows"]),
        seed=int(data.get("seed", 0)),
        mode=ImportMode(data.get("mode", ImportMode.INSERT)),
        columns=tuple(
            ColumnGenerator(
                g["column"], g["kind"], dict(g.get("params", {})), float(g.get("null_ratio", 0))
            )
            for g in data.get("columns", ())
        ),
    )


def preview_to_json(preview: Preview) -> dict[str, Any]:
    data = asdict(preview)
    data["columns"] = list(preview.columns)
    data["rows"] = [list(r) for r in preview.rows]
    data["mapping"] = [list(m) for m in preview.mapping]
    return data


def preview_from_json(data: dict[str, Any]) -> Preview:
    return Preview(
        columns=tuple(data.get("columns", ())),
        rows=tuple(tuple(r) for r in data.get("rows", ())),
        total_rows=int(data.get("total_rows", 0)),
        sha256=data.get("sha256", ""),
        estimated_rows=int(data.get("estimated_rows", 0)),
        mapping=tuple((str(a), str(b)) for a, b in data.get("mapping", ())),
    )


def _task(row: TaskRow, approvals: Sequence[str] = (), executors: Sequence[str] = ()) -> Task:
    return Task(
        id=row.id,
        name=row.name,
        kind=TaskKind(row.kind),
        datasource=row.datasource,
        submitter=row.submitter,
        status=TaskStatus(row.status),
        spec=spec_from_json(row.spec),
        schedule=Schedule(
            trigger=Trigger(row.trigger), cron=row.cron, timezone=row.timezone, channel=row.channel
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
        required_approvals=row.required_approvals,
        precheck_messages=tuple(row.precheck_messages or ()),
        approvals=tuple(approvals),
        executors=tuple(executors),
        import_spec=import_from_json(row.spec["import"]) if "import" in row.spec else None,
        generate_spec=(
            generate_from_json(row.spec["generate"]) if "generate" in row.spec else None
        ),
    )


def _run(row: RunRow) -> Run:
    return Run(
        id=row.id,
        task_id=row.task_id,
        status=RunStatus(row.status),
        executor=row.executor,
        start_time=row.start_time,
        end_time=row.end_time,
        rows=row.rows,
        bytes=row.bytes,
        filename=row.filename,
        object_key=row.object_key,
        error=row.error,
        scheduled_for=row.scheduled_for,
        rows_skipped=row.rows_skipped or 0,
        rows_updated=row.rows_updated or 0,
        backup_filename=row.backup_filename or "",
        backup_object_key=row.backup_object_key or "",
    )


class Tx:
    """The repository bound to one transaction."""

    def __init__(self, session: Session) -> None:
        self.s = session

    # -- tasks ---------------------------------------------------------------------------

    def add_task(
        self,
        *,
        name: str,
        kind: TaskKind,
        datasource: str,
        submitter: str,
        spec: ExportSpec,
        schedule: Schedule,
        required_approvals: int,
        status: TaskStatus,
        import_spec: ImportSpec | None = None,
        generate_spec: GenerateSpec | None = None,
    ) -> int:
        now = utcnow()
        spec_json = spec_to_json(spec)
        if import_spec is not None:
            spec_json["import"] = import_to_json(import_spec)
        if generate_spec is not None:
            spec_json["generate"] = generate_to_json(generate_spec)
        row = TaskRow(
            name=name,
            kind=int(kind),
            datasource=datasource,
            database=spec.database,
            submitter=submitter,
            status=int(status),
            executor_mode=int(spec.executor),
            spec=spec_json,
            trigger=int(schedule.trigger),
            cron=schedule.cron,
            timezone=schedule.timezone,
            channel=schedule.channel,
            required_approvals=required_approvals,
            precheck_messages=[],
            created_at=now,
            updated_at=now,
        )
        self.s.add(row)
        self.s.flush()
        return row.id

    def _row(self, task_id: int, *, lock: bool = False) -> TaskRow:
        stmt = sa.select(TaskRow).where(TaskRow.id == task_id)
        if lock:
            stmt = stmt.with_for_update()
        row = self.s.scalars(stmt).one_or_none()
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        return row

    def get_task(self, task_id: int, *, lock: bool = False) -> Task:
        """The task with its approvals; `lock` holds its row until the transaction ends."""
        row = self._row(task_id, lock=lock)
        approvals = self.s.scalars(
            sa.select(VoteRow.voter)
            .where(VoteRow.task_id == task_id, VoteRow.approve.is_(True))
            .order_by(VoteRow.id)
        ).all()
        executors = self.s.scalars(
            sa.select(RunRow.executor).where(RunRow.task_id == task_id).distinct()
        ).all()
        return _task(row, approvals, executors)

    def task_status(self, task_id: int) -> TaskStatus:
        status = self.s.scalar(sa.select(TaskRow.status).where(TaskRow.id == task_id))
        if status is None:
            raise NotFound(f"task {task_id} does not exist")
        return TaskStatus(status)

    def set_status(
        self,
        task_id: int,
        status: TaskStatus,
        *,
        expected: Iterable[TaskStatus],
        precheck_messages: Sequence[str] | None = None,
    ) -> bool:
        """Move the task to `status` if it is in one of `expected`; False when it was not."""
        values: dict[str, Any] = {"status": int(status), "updated_at": utcnow()}
        if precheck_messages is not None:
            values["precheck_messages"] = list(precheck_messages)
        result = self.s.execute(
            sa.update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.status.in_([int(s) for s in expected]))
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_generate_spec(self, task_id: int, generate: GenerateSpec) -> None:
        """Record what a generation's pre-check settled: its seed and every generator."""
        row = self._row(task_id)
        row.spec = {**row.spec, "generate": generate_to_json(generate)}
        row.updated_at = utcnow()

    def set_preview(self, task_id: int, preview: Preview) -> None:
        self.s.execute(
            sa.update(TaskRow)
            .where(TaskRow.id == task_id)
            .values(preview=preview_to_json(preview), updated_at=utcnow())
        )

    def preview(self, task_id: int) -> Preview | None:
        data = self.s.scalar(sa.select(TaskRow.preview).where(TaskRow.id == task_id))
        return preview_from_json(data) if data else None

    # -- votes, events, notifications ----------------------------------------------------

    def vote_of(self, task_id: int, voter: str) -> bool | None:
        """True/False for the voter's approve/reject on the task, None when they have not voted."""
        return self.s.scalars(
            sa.select(VoteRow.approve).where(VoteRow.task_id == task_id, VoteRow.voter == voter)
        ).one_or_none()

    def add_vote(self, task_id: int, voter: str, *, approve: bool, comment: str) -> int:
        """Record the vote and return how many approvals the task now has."""
        self.s.add(VoteRow(task_id=task_id, voter=voter, approve=approve, comment=comment))
        self.s.flush()
        return (
            self.s.scalar(
                sa.select(sa.func.count())
                .select_from(VoteRow)
                .where(VoteRow.task_id == task_id, VoteRow.approve.is_(True))
            )
            or 0
        )

    def add_event(
        self, task_id: int, actor: str, action: str, comment: str = "", *, principal: str = ""
    ) -> None:
        """Record a happening; `principal` when an authenticated client acted for `actor`."""
        self.s.add(
            EventRow(
                task_id=task_id, actor=actor, action=action, comment=comment, principal=principal
            )
        )

    def notify(
        self, task_id: int, kind: str, *, actor: str = "", run_id: int | None = None
    ) -> None:
        self.s.add(NotificationRow(task_id=task_id, kind=kind, actor=actor, run_id=run_id))

    def events(self, task_id: int) -> list[Event]:
        rows = self.s.scalars(
            sa.select(EventRow).where(EventRow.task_id == task_id).order_by(EventRow.id)
        )
        return [Event(r.actor, r.action, r.comment, r.created_at, r.principal) for r in rows]

    # -- the outbox's delivery side: leases, acks, the messages posted -------------------
    # A claim or an ack is a conditional UPDATE (`… WHERE id = :id AND <still claimable>`):
    # of two consumers racing for a row, exactly one sees a row count of 1.

    def claimable_notifications(self, now: datetime, limit: int) -> list[int]:
        """Ids free to lease at `now`, oldest first, each task's oldest undelivered only: a
        task's notifications are delivered in order."""
        n = NotificationRow
        earlier = aliased(NotificationRow, name="earlier")
        earlier_pending = (
            sa.select(earlier.id)
            .where(earlier.task_id == n.task_id, earlier.id < n.id, earlier.delivered_at.is_(None))
            .exists()
        )
        return list(
            self.s.scalars(
                sa.select(n.id).where(_claimable(now), ~earlier_pending).order_by(n.id).limit(limit)
            )
        )

    def lease_notification(
        self, notification_id: int, consumer: str, *, now: datetime, until: datetime
    ) -> bool:
        """Lease it to `consumer` until `until`; False when someone else claimed it first."""
        result = self.s.execute(
            sa.update(NotificationRow)
            .where(NotificationRow.id == notification_id, _claimable(now))
            .values(leased_by=consumer, lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def notification(self, notification_id: int) -> Notification:
        row = self.s.get(NotificationRow, notification_id)
        if row is None:
            raise NotFound(f"notification {notification_id} does not exist")
        return _notification(row)

    def notifications(self, ids: Sequence[int]) -> list[Notification]:
        rows = self.s.scalars(
            sa.select(NotificationRow)
            .where(NotificationRow.id.in_(ids))
            .order_by(NotificationRow.id)
        )
        return [_notification(r) for r in rows]

    def deliver_notification(
        self,
        notification_id: int,
        consumer: str,
        *,
        now: datetime,
        error: str,
        attempts: int | None = None,
    ) -> bool:
        """Mark it delivered (or given up, with the failed `attempts`); False when `consumer`
        no longer holds its lease."""
        values: dict[str, Any] = {"delivered_at": now, "last_error": error, "lease_until": None}
        if attempts is not None:
            values["attempts"] = attempts
        return self._settle(notification_id, consumer, now, values)

    def retry_notification(
        self,
        notification_id: int,
        consumer: str,
        *,
        now: datetime,
        error: str,
        attempts: int,
        next_attempt_at: datetime,
    ) -> bool:
        """Release it for another attempt at `next_attempt_at`; False when `consumer` no
        longer holds its lease."""
        values = {
            "attempts": attempts,
            "last_error": error,
            "lease_until": None,
            "leased_by": "",
            "next_attempt_at": next_attempt_at,
        }
        return self._settle(notification_id, consumer, now, values)

    def _settle(
        self, notification_id: int, consumer: str, now: datetime, values: dict[str, Any]
    ) -> bool:
        n = NotificationRow
        holds = sa.and_(
            n.id == notification_id,
            n.delivered_at.is_(None),
            # the holder, or anyone once the lease lapsed and nobody else took it
            sa.or_(n.leased_by == consumer, n.lease_until < now),
        )
        settle = sa.update(n).where(holds).values(**values)
        result = self.s.execute(settle.execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def message_refs(self, task_id: int) -> list[MessageRef]:
        rows = self.s.scalars(
            sa.select(MessageRefRow)
            .where(MessageRefRow.task_id == task_id)
            .order_by(MessageRefRow.id)
        )
        return [MessageRef(r.channel, r.ts, r.purpose) for r in rows]

    def save_message_ref(self, task_id: int, ref: MessageRef, now: datetime) -> None:
        """Remember the message posted for `ref.purpose`, replacing an earlier one."""
        replace = (
            sa.update(MessageRefRow)
            .where(MessageRefRow.task_id == task_id, MessageRefRow.purpose == ref.purpose)
            .values(channel=ref.channel, ts=ref.ts, updated_at=now)
        )
        # Update first: the row usually exists when a message is edited again.
        if self.s.execute(replace).rowcount:  # type: ignore[attr-defined]
            return
        try:
            with self.s.begin_nested():
                self.s.add(
                    MessageRefRow(
                        task_id=task_id,
                        purpose=ref.purpose,
                        channel=ref.channel,
                        ts=ref.ts,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:  # a concurrent writer inserted it: keep theirs updated
            self.s.execute(replace)

    # -- runs ----------------------------------------------------------------------------

    def add_run(
        self, task_id: int, executor: str, *, owner: str, scheduled_for: datetime | None = None
    ) -> int:
        now = utcnow()
        row = RunRow(
            task_id=task_id,
            status=int(RunStatus.EXECUTING),
            executor=executor,
            scheduled_for=scheduled_for,
            start_time=now,
            owner=owner,
            heartbeat_at=now,
        )
        self.s.add(row)
        self.s.flush()
        return row.id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        rows: int = 0,
        size: int = 0,
        filename: str = "",
        object_key: str = "",
        error: str = "",
        rows_skipped: int = 0,
        rows_updated: int = 0,
        backup_filename: str = "",
        backup_object_key: str = "",
    ) -> bool:
        """End a run that is still executing; False when it had already ended."""
        result = self.s.execute(
            sa.update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == int(RunStatus.EXECUTING))
            .values(
                status=int(status),
                end_time=utcnow(),
                rows=rows,
                bytes=size,
                filename=filename,
                object_key=object_key,
                error=error,
                rows_skipped=rows_skipped,
                rows_updated=rows_updated,
                backup_filename=backup_filename,
                backup_object_key=backup_object_key,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def add_unrun_firing(self, task_id: int, scheduled_for: datetime, error: str) -> int:
        """Record a firing that did not run (missed while down, or overlapping a run)."""
        now = utcnow()
        row = RunRow(
            task_id=task_id,
            status=int(RunStatus.FAILED),
            executor=SCHEDULER,
            scheduled_for=scheduled_for,
            start_time=now,
            end_time=now,
            error=error,
        )
        self.s.add(row)
        self.s.flush()
        return row.id

    def canceled_runs(self, run_ids: Sequence[int]) -> dict[int, str]:
        """Which of these runs belong to a task canceled since, each with who canceled it."""
        if not run_ids:
            return {}
        found = self.s.execute(
            sa.select(RunRow.id, RunRow.task_id)
            .join(TaskRow, TaskRow.id == RunRow.task_id)
            .where(RunRow.id.in_(run_ids), TaskRow.status == int(TaskStatus.CANCELED))
        ).all()
        return {run_id: self.canceled_by(task_id) for run_id, task_id in found}

    def canceled_by(self, task_id: int) -> str:
        """Who canceled the task (the latest cancel recorded), or "" when nobody did."""
        actor = self.s.scalars(
            sa.select(EventRow.actor)
            .where(EventRow.task_id == task_id, EventRow.action == "cancel")
            .order_by(EventRow.id.desc())
            .limit(1)
        ).one_or_none()
        return actor or ""

    def executing_run(self, task_id: int) -> Run | None:
        row = self.s.scalars(
            sa.select(RunRow)
            .where(RunRow.task_id == task_id, RunRow.status == int(RunStatus.EXECUTING))
            .limit(1)
        ).one_or_none()
        return _run(row) if row else None

    # -- schedules -----------------------------------------------------------------------

    def active_schedules(self) -> list[tuple[Task, datetime]]:
        """Approved CRON tasks, each with the moment up to which its firings are dealt with:
        its latest recorded firing, else its approval."""
        rows = self.s.execute(
            _with_firing_marks().where(
                TaskRow.trigger == int(Trigger.CRON), TaskRow.status == int(TaskStatus.APPROVED)
            )
        ).all()
        return [(_task(row), _dealt_with(row, fired, approved)) for row, fired, approved in rows]

    def schedule_dealt_with(self, task_id: int) -> datetime:
        found = self.s.execute(_with_firing_marks().where(TaskRow.id == task_id)).one_or_none()
        if found is None:
            raise NotFound(f"task {task_id} does not exist")
        row, fired, approved = found
        return _dealt_with(row, fired, approved)

    def heartbeat(self, progress: Mapping[int, tuple[int, int]]) -> None:
        """Runs this process still runs are alive, with their (rows, bytes) so far, so that
        every replica can show how far they are; finishing a run writes its final counts."""
        now = utcnow()
        for run_id, (rows, size) in progress.items():
            self.s.execute(
                sa.update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == int(RunStatus.EXECUTING))
                .values(heartbeat_at=now, rows=rows, bytes=size)
            )

    def stale_runs(self, *, owner: str | None, older_than: datetime) -> list[Run]:
        """Runs still EXECUTING whose process is gone: `owner`'s, or silent since `older_than`."""
        cond = RunRow.heartbeat_at < older_than
        if owner is not None:
            cond = sa.or_(RunRow.owner == owner, cond)
        rows = self.s.scalars(
            sa.select(RunRow).where(RunRow.status == int(RunStatus.EXECUTING), cond)
        )
        return [_run(r) for r in rows]

    def get_run(self, run_id: int) -> Run:
        row = self.s.get(RunRow, run_id)
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        return _run(row)

    def runs(self, task_id: int, *, limit: int = 50) -> list[Run]:
        rows = self.s.scalars(
            sa.select(RunRow)
            .where(RunRow.task_id == task_id)
            .order_by(RunRow.id.desc())
            .limit(limit)
        )
        return [_run(r) for r in rows]

    def latest_successful_run(self, task_id: int) -> Run | None:
        row = self.s.scalars(
            sa.select(RunRow)
            .where(RunRow.task_id == task_id, RunRow.status == int(RunStatus.SUCCESS))
            .order_by(RunRow.id.desc())
            .limit(1)
        ).one_or_none()
        return _run(row) if row else None

    # -- listing -------------------------------------------------------------------------

    def backlog(self, now: datetime) -> Backlog:
        """Tasks waiting for approval (since they entered APPROVING: votes do not move
        `updated_at`) and undelivered notifications, with the oldest of each."""
        waiting, oldest_task = self.s.execute(
            sa.select(sa.func.count(), sa.func.min(TaskRow.updated_at)).where(
                TaskRow.status == int(TaskStatus.APPROVING)
            )
        ).one()
        pending, oldest_note = self.s.execute(
            sa.select(sa.func.count(), sa.func.min(NotificationRow.created_at)).where(
                NotificationRow.delivered_at.is_(None)
            )
        ).one()

        def age(moment: datetime | None) -> float:
            return max((now - _as_utc(moment)).total_seconds(), 0.0) if moment else 0.0

        return Backlog(waiting, age(oldest_task), pending, age(oldest_note))

    def list_tasks(self, q: TaskQuery) -> Page:
        conds: list[sa.ColumnElement[bool]] = []
        if q.kind is not None:
            conds.append(TaskRow.kind == int(q.kind))
        if q.status is not None:
            conds.append(TaskRow.status == int(q.status))
        if q.datasource:
            conds.append(TaskRow.datasource == q.datasource)
        if q.task_id is not None:
            conds.append(TaskRow.id == q.task_id)
        if q.visible_datasources is not None:
            conds.append(
                sa.or_(
                    TaskRow.submitter == q.user,
                    TaskRow.datasource.in_(sorted(q.visible_datasources)),
                )
            )
        if q.role is not None:
            conds.append(self._role_condition(q))

        total = self.s.scalar(sa.select(sa.func.count()).select_from(TaskRow).where(*conds)) or 0
        rows = self.s.scalars(
            sa.select(TaskRow)
            .where(*conds)
            .order_by(TaskRow.id.desc())
            .offset((q.page - 1) * q.page_size)
            .limit(q.page_size)
        ).all()
        return Page(items=tuple(_task(r) for r in rows), total=total, page_size=q.page_size)

    @staticmethod
    def _role_condition(q: TaskQuery) -> sa.ColumnElement[bool]:
        my_vote = sa.exists().where(VoteRow.task_id == TaskRow.id, VoteRow.voter == q.user)
        if q.role is Role.COMMITTER:
            return TaskRow.submitter == q.user
        if q.role is Role.TO_APPROVE:
            return sa.and_(
                TaskRow.status == int(TaskStatus.APPROVING),
                TaskRow.datasource.in_(sorted(q.approver_of)),
                TaskRow.submitter != q.user,
                ~my_vote,
            )
        if q.role is Role.TO_EXECUTE:
            return sa.and_(
                TaskRow.status.in_([int(TaskStatus.APPROVED), int(TaskStatus.EXECUTE_FAILED)]),
                TaskRow.trigger == int(Trigger.CURRENT),
                sa.or_(
                    sa.and_(
                        TaskRow.executor_mode == int(Executor.COMMITTER),
                        TaskRow.submitter == q.user,
                    ),
                    sa.and_(
                        TaskRow.executor_mode == int(Executor.APPROVER),
                        TaskRow.datasource.in_(sorted(q.approver_of)),
                    ),
                ),
            )
        if q.role is Role.APPROVED:
            return sa.exists().where(
                VoteRow.task_id == TaskRow.id, VoteRow.voter == q.user, VoteRow.approve.is_(True)
            )
        # Role.EXECUTED
        return sa.exists().where(RunRow.task_id == TaskRow.id, RunRow.executor == q.user)


SCHEDULER = "scheduler"  # the executor of scheduled runs


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    n = NotificationRow
    return sa.and_(
        n.delivered_at.is_(None),
        sa.or_(n.lease_until.is_(None), n.lease_until < now),
        sa.or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now),
    )


def _notification(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        task_id=row.task_id,
        run_id=row.run_id,
        kind=row.kind,
        actor=row.actor or "",
        created_at=row.created_at,
        attempts=row.attempts or 0,
    )


def _with_firing_marks() -> sa.Select[TaskRow, datetime | None, datetime]:
    """Task rows with what `_dealt_with` needs: the latest recorded firing, the approval."""
    last_firing = (
        sa.select(sa.func.max(RunRow.scheduled_for))
        .where(RunRow.task_id == TaskRow.id)
        .scalar_subquery()
    )
    approved_at = (
        sa.select(sa.func.max(EventRow.created_at))
        .where(EventRow.task_id == TaskRow.id, EventRow.action == "approved")
        .scalar_subquery()
    )
    return sa.select(TaskRow, last_firing, approved_at)


def _as_utc(moment: datetime) -> datetime:
    # Aggregates come back without the column type's processing: naive on SQLite.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dealt_with(row: TaskRow, fired: datetime | None, approved: datetime | None) -> datetime:
    return _as_utc(fired or approved or row.updated_at)


class TaskStore:
    """Owns the engine; hands out units of work."""

    def __init__(self, url: str) -> None:
        self.engine = create_store_engine(url)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        with self._writes.begin() as session:
            yield Tx(session)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._reads.begin() as session:
            yield Tx(session)

    def backlog(self, now: datetime) -> Backlog:
        with self.read() as tx:
            return tx.backlog(now)

    def close(self) -> None:
        self.engine.dispose()
