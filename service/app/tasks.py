"""The export workflow's use cases: what SubmitTask, Approve, Execute… do, in domain terms.

Adapters (gRPC servicers, the CLI through gRPC, the scheduler) call these; each use case is
one transaction on the task store, so a decision and its event and notification are
recorded together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.app.kinds import KindHandler, Precheck
from service.config import Config
from service.datasources import Datasource, DatasourceRegistry
from service.dbcheck.live import check_live
from service.domain import workflow
from service.domain.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Unavailable,
    WrongState,
)
from service.domain.model import (
    Executor,
    ExportSpec,
    GenerateSpec,
    ImportSpec,
    Page,
    Preview,
    Run,
    RunStatus,
    Schedule,
    Task,
    TaskDetail,
    TaskKind,
    TaskQuery,
    TaskStatus,
)
from service.domain.precheck import check_export
from service.domain.schedule import (
    DueFirings,
    describe_firing,
    describe_next_firings,
    due_firings,
    schedule_problems,
)
from service.metrics import Metrics
from service.store.repository import SCHEDULER, TaskStore, Tx

log = logging.getLogger(__name__)

S = TaskStatus
AUTO_EXECUTOR = "auto"
MAX_NAME = 200
MAX_REASON = 4000
MAX_STATEMENT = 1_000_000
MAX_TABLES = 500
MAX_FIELDS = 2000
MAX_COMMENT = 4000


class RunLauncher(Protocol):
    """Starts a recorded run in the background (the export engine's worker pool).

    `logical_time` is the firing a scheduled run belongs to: what its placeholders mean."""

    def launch(self, task: Task, run_id: int, logical_time: datetime | None = None) -> None: ...

    def stop_run(self, run_id: int, operator: str) -> None:
        """Stop the run at once if this process runs it (others notice the canceled task)."""
        ...


@dataclass(frozen=True)
class NewTask:
    name: str
    kind: TaskKind
    dsn: str
    spec: ExportSpec  # for other kinds: their database, reason and executor
    schedule: Schedule
    import_spec: ImportSpec | None = None
    generate_spec: GenerateSpec | None = None


class TaskManager:
    def __init__(
        self,
        config: Config,
        store: TaskStore,
        registry: DatasourceRegistry,
        *,
        instance_id: str,
        launcher: RunLauncher | None = None,
        kinds: Mapping[TaskKind, KindHandler] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.store = store
        self.registry = registry
        self.instance_id = instance_id
        self.launcher = launcher
        # How kinds other than export are checked and run (imports, generations).
        self.kinds: Mapping[TaskKind, KindHandler] = kinds or {}

    # -- submit and pre-check ------------------------------------------------------------

    def submit(self, new: NewTask, submitter: str, *, via: str = "") -> Task:
        """Record the task, pre-check it, and return it as APPROVING or PRE_CHECK_FAILED."""
        _require_actor(submitter, "x-woxqaq-user metadata (the submitter)")
        handler = self.kinds.get(new.kind)
        if new.kind is TaskKind.DATA_EXPORT:
            _validate_sizes(new)
        elif handler is None:
            raise InvalidRequest(f"kind {new.kind.name} is not supported by this service")
        else:
            if new.schedule.is_cron:
                raise InvalidRequest(
                    f"a {new.kind.name} task runs once: a CRON schedule is for exports only"
                )
            _check_len(new.name, MAX_NAME, "name")
            handler.validate(new)
        ds = self.registry.resolve(new.dsn)
        with self.store.write() as tx:
            task_id = tx.add_task(
                name=new.name,
                kind=new.kind,
                datasource=ds.name,
                submitter=submitter,
                spec=new.spec,
                schedule=new.schedule,
                required_approvals=ds.required_approvals,
                status=S.PRE_CHECK,
                import_spec=new.import_spec,
                generate_spec=new.generate_spec,
            )
            tx.add_event(task_id, submitter, "submit", new.spec.reason, principal=via)

        # The pre-check reads the live schema: outside the write transaction, so a slow
        # datasource never holds the task store's lock.
        checked = self._precheck(new, ds) if handler is None else _precheck_kind(handler, new, ds)
        problems = checked.problems
        with self.store.write() as tx:
            if checked.preview is not None:
                tx.set_preview(task_id, checked.preview)
            if checked.generate_spec is not None:
                tx.set_generate_spec(task_id, checked.generate_spec)
            for note in checked.notes:
                tx.add_event(task_id, "pre-check", "precheck_note", note)
            if problems:
                _move(tx, task_id, S.PRE_CHECK_FAILED, {S.PRE_CHECK}, precheck_messages=problems)
                tx.add_event(task_id, "pre-check", "precheck_failed", "\n".join(problems))
            else:
                _move(tx, task_id, S.APPROVING, {S.PRE_CHECK}, precheck_messages=[])
                tx.add_event(task_id, "pre-check", "precheck_passed")
                if handler is None and checked.preview is not None:  # an export's estimate,
                    rows = checked.preview.estimated_rows  # told to Slack as an event too
                    tx.add_event(task_id, "pre-check", "estimate", _describe_estimate(rows))
                if new.schedule.is_cron:  # what the approvers approve, in plain dates
                    tx.add_event(
                        task_id,
                        "pre-check",
                        "schedule",
                        f"next runs: {describe_next_firings(new.schedule, 3)}",
                    )
                tx.notify(task_id, "approval_requested", actor=submitter)
            task = tx.get_task(task_id)
        log.info("task submitted", extra={"task_id": task_id, "status": task.status.name})
        return task

    def _precheck(self, new: NewTask, ds: Datasource) -> Precheck:
        """An export's pre-check; when it passed, the database's row estimate is its preview."""
        problems = schedule_problems(new.schedule)
        reader = self.registry.reader_audit(ds).problem(ds.backend)
        if reader is not None:
            return Precheck([*problems, reader])
        schema = None
        if not new.spec.is_sql:
            try:
                schema = self.registry.schema(ds, new.spec.database)
            except (NotFound, Unavailable) as exc:
                return Precheck([*problems, str(exc)])
        try:
            problems += check_export(new.spec, ds.sqlglot_dialect, schema, ds.allowed_functions)
            if problems or ds.backend == "sqlite":
                return Precheck(problems)
            # Only a request every rule accepted meets the server (see service.dbcheck).
            live = check_live(self.registry.engine(ds), ds, new.spec, schedule=new.schedule)
        except Exception:  # a pre-check bug must fail the task, not the request
            log.exception("pre-check crashed")
            problems.append(PRECHECK_CRASHED)
            return Precheck(problems)
        if live.problems or live.estimated_rows is None:
            return Precheck(list(live.problems))
        return Precheck([], Preview(estimated_rows=live.estimated_rows))

    # -- decisions -----------------------------------------------------------------------

    def approve(self, task_id: int, approver: str, comment: str = "", *, via: str = "") -> Task:
        return self._vote(task_id, approver, comment, approve=True, via=via)

    def reject(self, task_id: int, approver: str, comment: str = "", *, via: str = "") -> Task:
        return self._vote(task_id, approver, comment, approve=False, via=via)

    def _vote(self, task_id: int, actor: str, comment: str, *, approve: bool, via: str) -> Task:
        _require_actor(actor, "approver")
        _check_len(comment, MAX_COMMENT, "comment")
        launch_run: int | None = None
        decision = ""
        with self.store.write() as tx:
            task = tx.get_task(task_id, lock=True)  # concurrent votes queue here
            approving_since = task.updated_at  # votes leave it alone until the decision
            ds = self.registry.get(task.datasource)
            previous = tx.vote_of(task_id, actor)
            if previous is not None and task.status is S.APPROVING:
                word = "approved" if previous else "rejected"
                raise WrongState(f"you have already {word} task {task_id}; a vote counts once")
            workflow.check_can_vote(task, actor, ds.approvers)
            approvals = tx.add_vote(task_id, actor, approve=approve, comment=comment)
            tx.add_event(task_id, actor, "approve" if approve else "reject", comment, principal=via)
            if not approve:
                _move(tx, task_id, S.NOT_APPROVED, {S.APPROVING})
                tx.notify(task_id, "rejected", actor=actor)
                decision = "rejected"
            elif workflow.quorum_reached(approvals, task.required_approvals):
                _move(tx, task_id, S.APPROVED, {S.APPROVING})
                tx.add_event(task_id, actor, "approved", f"{approvals} approval(s)", principal=via)
                tx.notify(task_id, "approved", actor=actor)
                decision = "approved"
                if task.spec.executor is Executor.AUTO and not task.schedule.is_cron:
                    launch_run = self._start_run(tx, task, AUTO_EXECUTOR)
            else:
                tx.notify(task_id, "vote", actor=actor)
            task = tx.get_task(task_id)
        if decision:  # committed: how long the approvers took
            waited = (task.updated_at - approving_since).total_seconds()
            self.metrics.approval_wait.labels(decision).observe(max(waited, 0.0))
        if launch_run is not None:
            self._launch(task, launch_run)
        return task

    def cancel(self, task_id: int, operator: str, comment: str = "", *, via: str = "") -> Task:
        """Cancel the task; a run of it in progress (the task EXECUTING, or a firing of its
        schedule) is stopped: its statement interrupted, nothing published, the run ended
        as canceled by `operator` once the export has let go of the database."""
        _require_actor(operator, "operator")
        _check_len(comment, MAX_COMMENT, "comment")
        with self.store.write() as tx:
            task = tx.get_task(task_id, lock=True)
            running = tx.executing_run(task_id)
            approvers = self._approvers(task)
            workflow.check_can_cancel(task, operator, approvers, running=running is not None)
            _move(tx, task_id, S.CANCELED, workflow.CANCELABLE)
            note = comment if running is None else f"run {running.id} stopped. {comment}".strip()
            tx.add_event(task_id, operator, "cancel", note, principal=via)
            tx.notify(task_id, "canceled", actor=operator)
            task = tx.get_task(task_id)
        if running is not None and self.launcher is not None:
            self.launcher.stop_run(running.id, operator)
        log.info(
            "task canceled",
            extra={"task_id": task_id, "run_id": running.id if running else None},
        )
        return task

    def _approvers(self, task: Task) -> frozenset[str]:
        """The datasource's approvers; none when it has left the config since."""
        try:
            return self.registry.get(task.datasource).approvers
        except NotFound:
            return frozenset()

    # -- execution -----------------------------------------------------------------------

    def execute(self, task_id: int, executor: str, *, via: str = "") -> int:
        """Start a run by hand; returns its id at once (the export runs in the background)."""
        _require_actor(executor, "executor")
        with self.store.write() as tx:
            task = tx.get_task(task_id, lock=True)
            ds = self.registry.get(task.datasource)
            workflow.check_can_execute(task, executor, ds.approvers)
            run_id = self._start_run(tx, task, executor, via=via)
        self._launch(task, run_id)
        return run_id

    def _start_run(self, tx: Tx, task: Task, executor: str, *, via: str = "") -> int:
        if self.launcher is None:
            raise Unavailable("this service has no export workers configured")
        _move(tx, task.id, S.EXECUTING, workflow.EXECUTABLE)
        run_id = tx.add_run(task.id, executor, owner=self.instance_id)
        tx.add_event(task.id, executor, "execute", f"run {run_id}", principal=via)
        tx.notify(task.id, "run_started", actor=executor, run_id=run_id)
        return run_id

    def _launch(self, task: Task, run_id: int, logical_time: datetime | None = None) -> None:
        assert self.launcher is not None
        self.launcher.launch(task, run_id, logical_time)

    # -- schedules -----------------------------------------------------------------------

    def fire_schedule(self, task_id: int, now: datetime, grace: timedelta) -> int | None:
        """Deal with what the schedule of `task_id` owes at `now`; the id of the run started.

        The task's row lock and the recorded firings make this exactly once: replicas that
        call it for the same firing queue on the lock, and the later ones find it dealt with
        (the unique (task, firing) key of runs is the backstop).
        """
        started: tuple[Task, int, datetime] | None = None
        firings: dict[str, int] = {}  # outcome → count, counted once committed
        with self.store.write() as tx:
            task = tx.get_task(task_id, lock=True)
            if task.status is not S.APPROVED or not task.schedule.is_cron:
                return None  # canceled (or changed) since it was listed: stops at once
            due = due_firings(task.schedule, tx.schedule_dealt_with(task_id), now, grace)
            if due.missed and due.last_missed and due.first_missed:
                self._record_missed(tx, task, due, grace)
                firings["missed"] = due.missed
            if due.run is not None:
                started = self._start_firing(tx, task, due)
                firings["ran" if started else "skipped"] = 1
        for outcome, count in firings.items():
            self.metrics.firings.labels(outcome).inc(count)
        if started is None:
            return None
        self._launch(*started)
        return started[1]

    def _record_missed(self, tx: Tx, task: Task, due: DueFirings, grace: timedelta) -> None:
        assert due.first_missed and due.last_missed
        span = (
            f"the firing of {describe_firing(due.last_missed)}"
            if due.missed == 1
            else f"{due.missed} firings from {describe_firing(due.first_missed)} "
            f"to {describe_firing(due.last_missed)}"
        )
        error = (
            f"missed: {span} passed without a run (no service was running, or none could "
            f"reach the task store) and is more than the {_duration(grace)} grace time ago; "
            "the next firing runs as usual"
        )
        _record_unrun(tx, task, due.last_missed, "run_missed", error)

    def _start_firing(
        self, tx: Tx, task: Task, due: DueFirings
    ) -> tuple[Task, int, datetime] | None:
        assert due.run is not None
        previous = tx.executing_run(task.id)
        if previous is not None:  # runs of a schedule never overlap
            error = (
                f"skipped: run {previous.id} of an earlier firing was still running at "
                f"{describe_firing(due.run)}; make the schedule less frequent or the export smaller"
            )
            # Recorded, not announced: the run still going has its message in the channel
            # already, and an every-minute schedule would post (and DM) a skip each minute.
            _record_unrun(tx, task, due.run, "run_skipped", error, announce=False)
            return None
        if self.launcher is None:
            raise Unavailable("this service has no export workers configured")
        run_id = tx.add_run(task.id, SCHEDULER, owner=self.instance_id, scheduled_for=due.run)
        note = f"run {run_id} for {describe_firing(due.run)}"
        if due.coalesced:
            note += f" (with {due.coalesced} earlier firing(s) missed within the grace time)"
        tx.add_event(task.id, SCHEDULER, "scheduled_run", note)
        tx.notify(task.id, "run_started", actor=SCHEDULER, run_id=run_id)
        return task, run_id, due.run

    # -- reads ---------------------------------------------------------------------------

    def detail(self, task_id: int, user: str = "") -> TaskDetail:
        with self.store.read() as tx:
            task = tx.get_task(task_id)
            self._check_visible(task, user)
            return TaskDetail(
                task=task,
                runs=tuple(tx.runs(task_id)),
                events=tuple(tx.events(task_id)),
                preview=tx.preview(task_id),
            )

    def list(self, query: TaskQuery) -> Page:
        if query.role is not None and not query.user:
            raise InvalidRequest("a role filter is relative to you: set the x-woxqaq-user metadata")
        approver_of = frozenset(ds.name for ds in self.registry.all() if query.user in ds.approvers)
        visible = self._visible_datasources(query.user)
        with self.store.read() as tx:
            return tx.list_tasks(
                TaskQuery(
                    **{
                        **query.__dict__,
                        "approver_of": approver_of,
                        "visible_datasources": visible,
                    }
                )
            )

    def run_for_download(self, task_id: int, run_id: int | None, user: str = "") -> Run:
        """The run whose file to link: the given one, or the newest successful one."""
        with self.store.read() as tx:
            task = tx.get_task(task_id)
            self._check_visible(task, user)
            if run_id is None:
                latest = tx.latest_successful_run(task_id)
                if latest is None:
                    raise WrongState(f"task {task_id} has no finished export to download yet")
                self._check_may_download(task, latest, user)
                return latest
            run = tx.get_run(run_id)
            if run.task_id != task_id:
                raise NotFound(f"run {run_id} does not belong to task {task_id}")
            if run.status is not RunStatus.SUCCESS:
                raise WrongState(f"run {run_id} has no file: it is {run.status.name.lower()}")
        self._check_may_download(task, run, user)
        return run

    def _check_may_download(self, task: Task, run: Run, user: str) -> None:
        """The data goes to the submitter, the datasource's approvers and viewers, and the
        person who ran it; seeing that a task exists is not enough."""
        ds = self.registry.get(task.datasource)
        if user and user in {task.submitter, run.executor, *ds.approvers, *ds.viewers}:
            return
        raise PermissionDenied(
            f"{user or 'an unnamed caller'} may not download task {task.id}'s file: it goes to "
            "its submitter, the approvers and viewers of datasource "
            f"{task.datasource!r}, and whoever ran it"
        )

    def _visible_datasources(self, user: str) -> frozenset[str] | None:
        return self.registry.visible_to(user)

    def _check_visible(self, task: Task, user: str) -> None:
        visible = self._visible_datasources(user)
        if visible is not None and task.submitter != user and task.datasource not in visible:
            raise NotFound(f"task {task.id} does not exist")


PRECHECK_CRASHED = "the pre-check could not analyse this request; simplify it or report it"


def _precheck_kind(handler: KindHandler, new: NewTask, ds: Datasource) -> Precheck:
    try:
        return handler.precheck(new, ds)
    except (NotFound, Unavailable, InvalidRequest) as exc:
        return Precheck([str(exc)])
    except Exception:  # a pre-check bug must fail the task, not the request
        log.exception("pre-check crashed")
        return Precheck([PRECHECK_CRASHED])


def _move(
    tx: Tx,
    task_id: int,
    status: TaskStatus,
    expected: Collection[TaskStatus],
    *,
    precheck_messages: Sequence[str] | None = None,
) -> None:
    """The guarded status change of every use case: when another request moved the task
    first, this one loses with the task's real state, and raising rolls back whatever it
    had written in the transaction (its events and notifications)."""
    if not tx.set_status(task_id, status, expected=expected, precheck_messages=precheck_messages):
        now = tx.get_task(task_id).status
        raise WrongState(
            f"task {task_id} is {workflow.status_label(now)}: another request changed it at "
            f"the same moment, so it cannot become {workflow.status_label(status)}"
        )


def _record_unrun(
    tx: Tx, task: Task, firing: datetime, action: str, error: str, *, announce: bool = True
) -> None:
    """A firing that did not run, as a failed run saying why; announced, the channel and
    the owner hear of it."""
    run_id = tx.add_unrun_firing(task.id, firing, error)
    tx.add_event(task.id, SCHEDULER, action, f"run {run_id}: {error}")
    if announce:
        tx.notify(task.id, "run_finished", actor=SCHEDULER, run_id=run_id)
    log.warning("scheduled firing not run", extra={"task_id": task.id, "run_id": run_id})


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _require_actor(actor: str, what: str) -> None:
    if not actor.strip():
        raise InvalidRequest(f"{what} is empty: say who is acting")
    _check_len(actor, 200, what)


def _check_len(value: str, limit: int, what: str) -> None:
    if len(value) > limit:
        raise InvalidRequest(f"{what} is {len(value):,} characters long; the limit is {limit:,}")


def _describe_estimate(rows: int) -> str:
    return f"about {rows:,} row(s), by the database's plan"


def _validate_sizes(new: NewTask) -> None:
    _check_len(new.name, MAX_NAME, "name")
    _check_len(new.spec.reason, MAX_REASON, "export_reason")
    _check_len(new.spec.statement, MAX_STATEMENT, "statement")
    _check_len(new.spec.database, 200, "database")
    if len(new.spec.tables) > MAX_TABLES:
        raise InvalidRequest(f"{len(new.spec.tables)} tables given; the limit is {MAX_TABLES}")
    for opt in new.spec.tables:
        _check_len(opt.table, 200, "table")
        _check_len(opt.filter, 4000, f"filter of table {opt.table!r}")
        if len(opt.fields) > MAX_FIELDS:
            raise InvalidRequest(
                f"table {opt.table!r} lists {len(opt.fields)} fields; the limit is {MAX_FIELDS}"
            )
    if new.spec.is_sql and (new.spec.tables or new.spec.export_all):
        raise InvalidRequest("give either a SQL statement (ebs) or tables (eatt), not both")
    if not new.spec.is_sql and not new.spec.tables and not new.spec.export_all:
        raise InvalidRequest(
            "nothing to export: give a SQL statement (ded.ebs.statement) or tables "
            "(ded.eatt.option, or ded.eatt.export_all)"
        )
