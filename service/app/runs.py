"""Running exports: the bounded worker pool, progress for WatchTask, download links, recovery.

A run is recorded (EXECUTING) by the use case that starts it, in the same transaction as
the task's move to EXECUTING; this module carries it out: export to a local file, publish
the file to the object store, record the outcome. A process that dies mid-run stops
heartbeating, and any live process marks the run failed once its heartbeat is stale.

A canceled task's run stops: at once when the cancel reaches this process, else when the
cancel poll (every `CANCEL_POLL_S`) finds its task canceled in the store. Its statement is
interrupted, its partial file removed, nothing published (a file published in the same
instant is deleted again), and the run ends CANCELED, "canceled by <who>".
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from service.app.kinds import KindHandler, RunControl
from service.config import Config
from service.datasources import DatasourceRegistry, describe_db_error
from service.domain import placeholders
from service.domain.errors import Unavailable, WoxqaqError, WrongState
from service.domain.model import Run, RunStatus, Task, TaskKind, TaskStatus
from service.export.engine import ExportCanceled, ExportFailed, ExportOptions, export
from service.logs import log_context
from service.metrics import Metrics
from service.storage.base import ObjectStore, SignedUrl
from service.store.repository import TaskStore

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
CANCEL_POLL_S = 0.5
STOPPED_MESSAGE = "the service stopped during the export (restarted or killed); execute it again"
STOPPED_SCHEDULED = (
    "the service stopped during the export (restarted or killed); the next firing runs as usual"
)


def stopped_message(task: Task) -> str:
    return STOPPED_SCHEDULED if task.schedule.is_cron else STOPPED_MESSAGE


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Progress:
    run_id: int
    status: TaskStatus
    rows: int = 0
    bytes: int = 0
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status is not TaskStatus.EXECUTING


def safe_name(text: str, limit: int = 60) -> str:
    """A file-name part safe on every OS (no separators, reserved characters or spaces)."""
    return _UNSAFE.sub("_", text).strip("._")[:limit] or "export"


def export_basename(task: Task, started: datetime) -> str:
    if task.spec.is_sql or len(task.spec.tables) != 1 or task.spec.export_all:
        what = f"task{task.id}"
    else:
        what = f"{task.spec.tables[0].table}_task{task.id}"
    return f"{safe_name(task.datasource, 40)}_{safe_name(what)}_{started:%Y%m%d-%H%M%S}"


class Exports:
    def __init__(
        self,
        config: Config,
        store: TaskStore,
        registry: DatasourceRegistry,
        object_store: ObjectStore,
        *,
        instance_id: str,
        stale_after_s: float = 6 * HEARTBEAT_S,
        heartbeat_s: float = HEARTBEAT_S,
        kinds: Mapping[TaskKind, KindHandler] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.store = store
        self.registry = registry
        self.objects = object_store
        self.instance_id = instance_id
        self.stale_after = timedelta(seconds=stale_after_s)
        self.heartbeat_s = heartbeat_s
        self.work_dir = config.work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(config.export.workers, thread_name_prefix="export")
        self._progress: dict[int, Progress] = {}  # runs of this process, live
        self._changed = threading.Condition()
        self._stopping = threading.Event()  # no new runs
        self._abandon = threading.Event()  # running exports stop at their next batch
        self._maintenance = threading.Thread(
            target=self._maintain, name="export-maintenance", daemon=True
        )
        self._stops: dict[int, _Stop] = {}  # runs of this process, each with its stop
        self._cancel_poll = threading.Thread(
            target=self._poll_cancels, name="export-cancel-poll", daemon=True
        )
        self._finished_hooks: list[Callable[[Task, int], None]] = []
        self._started: dict[int, float] = {}  # run id → monotonic start, for its duration
        self._queued: set[int] = set()  # launched, waiting for a worker
        in_progress = self.metrics.runs_in_progress
        in_progress.labels("queued").set_function(lambda: len(self._queued))
        in_progress.labels("running").set_function(lambda: len(self._started))
        # Runs of kinds other than export (imports, generations) go to their handler.
        self.kinds: Mapping[TaskKind, KindHandler] = kinds or {}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        # On SQLite one process is assumed: every run still EXECUTING belongs to a dead one.
        single_process = self.store.engine.dialect.name == "sqlite"
        self.recover(cutoff=datetime.now(UTC) if single_process else None)
        self._maintenance.start()
        self._cancel_poll.start()

    def stop(self, grace_s: float) -> None:
        """Stop taking runs; give running exports `grace_s` to finish, then abandon them
        (their partial files are deleted and the runs recorded as failed)."""
        self._stopping.set()
        deadline = time.monotonic() + grace_s
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._changed:
            while self._progress and time.monotonic() < deadline:
                self._changed.wait(timeout=max(0.0, deadline - time.monotonic()))
        self._abandon.set()
        try:
            self._fail_own_runs()
        except Exception:  # the store may be down too; recovery will fail these runs later
            log.exception("could not record the runs this process abandoned")

    def on_finished(self, hook: Callable[[Task, int], None]) -> None:
        """Call `hook(task, run_id)` after each run of this process ends (delivery, scheduling)."""
        self._finished_hooks.append(hook)

    # -- running -------------------------------------------------------------------------

    def launch(self, task: Task, run_id: int, logical_time: datetime | None = None) -> None:
        if self._stopping.is_set():
            raise Unavailable("the service is shutting down; execute the task again in a moment")
        self._stops[run_id] = _Stop()
        self._set_progress(Progress(run_id, TaskStatus.EXECUTING, message="queued"))
        self._queued.add(run_id)
        self._pool.submit(self._run, task, run_id, logical_time, time.monotonic())

    def stop_run(self, run_id: int, operator: str) -> None:
        """Stop a run of this process (a canceled task's); others' runs are left alone."""
        stop = self._stops.get(run_id)
        if stop is not None:
            stop.set(operator)

    def _run(
        self, task: Task, run_id: int, logical_time: datetime | None, queued_at: float
    ) -> None:
        with log_context(task_id=task.id, run_id=run_id):
            self._started[run_id] = now = time.monotonic()
            self._queued.discard(run_id)
            self.metrics.queue_wait.labels(_kind(task)).observe(now - queued_at)
            try:
                handler = self.kinds.get(task.kind)
                if handler is not None:
                    self._run_kind(handler, task, run_id)
                else:
                    self._run_export(task, run_id, logical_time)
            finally:
                self._stops.pop(run_id, None)
                self._started.pop(run_id, None)  # an outcome never recorded here: no duration

    def _run_export(self, task: Task, run_id: int, logical_time: datetime | None) -> None:
        log.info("export started", extra={"task_id": task.id, "run_id": run_id})
        started = datetime.now(UTC)
        result = None
        stop = self._stops.setdefault(run_id, _Stop())
        abandon = self._abandon
        try:
            if stop.is_set():  # canceled while queued: the database is not even asked
                raise ExportCanceled("The export was canceled.")
            ds = self.registry.get(task.datasource)
            zone = placeholders.task_zone(task.schedule, ds.timezone)
            options = ExportOptions(
                fetch_size=self.config.export.fetch_size,
                csv_bom=self.config.export.csv_bom,
                statement_timeout_s=ds.statement_timeout_s,
                timezone=zone.key,
                escape_formulas=self.config.export.csv_escape_formulas,
            )

            def on_progress(rows: int, size: int) -> None:
                self._set_progress(Progress(run_id, TaskStatus.EXECUTING, rows, size, "exporting"))

            result = export(
                task.spec,
                ds,
                self.registry.engine(ds),
                work_dir=self.work_dir,
                basename=export_basename(task, started),
                options=options,
                progress=on_progress,
                cancelled=lambda: stop.is_set() or abandon.is_set(),
                params=placeholders.logical_values(
                    task.spec.statement, task.schedule, logical_time or started, zone
                ),
                at=logical_time or started,
            )
            if stop.is_set():  # canceled as the export finished: nothing is published
                raise ExportCanceled("The export was canceled.")
            key = f"tasks/{task.id}/runs/{run_id}/{result.filename}"
            size = self.objects.put_file(
                key, result.path, filename=result.filename, content_type=result.content_type
            )
            self._record(
                task,
                run_id,
                RunStatus.SUCCESS,
                rows=result.rows,
                size=size,
                filename=result.filename,
                object_key=key,
            )
        except (ExportFailed, WoxqaqError) as exc:
            self._record(task, run_id, RunStatus.FAILED, error=str(exc))
        except Exception as exc:  # a bug or a driver error nobody wrapped: still one clear line
            log.exception("export crashed", extra={"task_id": task.id, "run_id": run_id})
            self._record(
                task, run_id, RunStatus.FAILED, error=f"export failed: {describe_db_error(exc)}"
            )
        finally:
            if result is not None:
                result.path.unlink(missing_ok=True)

    def _run_kind(self, handler: KindHandler, task: Task, run_id: int) -> None:
        extra = {"task_id": task.id, "run_id": run_id}
        log.info("%s run started", task.kind.name.lower(), extra=extra)

        def on_progress(rows: int) -> None:
            self._set_progress(Progress(run_id, TaskStatus.EXECUTING, rows, 0, "writing"))

        # The same stop as an export's: set by a cancel here at once, by one through another
        # replica within CANCEL_POLL_S (_poll_cancels), or by the service stopping.
        stop, abandon = self._stops.setdefault(run_id, _Stop()), self._abandon
        try:
            out = handler.run(
                task, run_id, RunControl(lambda: stop.is_set() or abandon.is_set(), on_progress)
            )
        except WoxqaqError as exc:
            self._record(task, run_id, RunStatus.FAILED, error=str(exc))
        except Exception as exc:
            log.exception("run crashed", extra=extra)
            self._record(task, run_id, RunStatus.FAILED, error=f"failed: {describe_db_error(exc)}")
        else:
            self._record(
                task,
                run_id,
                RunStatus.SUCCESS,
                rows=out.rows,
                rows_skipped=out.rows_skipped,
                rows_updated=out.rows_updated,
                backup_filename=out.backup_filename,
                backup_object_key=out.backup_object_key,
                # The backup is what such a run offers for download.
                filename=out.backup_filename,
                object_key=out.backup_object_key,
                size=out.backup_bytes,
            )

    def _record(self, task: Task, run_id: int, status: RunStatus, **outcome: object) -> None:
        """Record a run's outcome, waiting out a task store that is down: an outcome lost
        here would leave the run EXECUTING for ever, kept alive by this process's heartbeat."""
        extra = {"task_id": task.id, "run_id": run_id}
        delay = 0.5
        while True:
            try:
                self._finish(task, run_id, status, **outcome)
                return
            except sa.exc.SQLAlchemyError as exc:
                log.warning(
                    "could not record the export's outcome (%s); retrying in %g s",
                    describe_db_error(exc),
                    delay,
                    extra=extra,
                )
            except Exception:
                log.exception("could not record the export's outcome", extra=extra)
                break
            if self._stopping.wait(delay):
                break  # stop() fails this process's runs, or recovery does once it is gone
            delay = min(delay * 2, 30.0)
        # No longer heartbeated: recovery fails the run once its heartbeat is stale.
        with self._changed:
            self._progress.pop(run_id, None)
            self._changed.notify_all()

    def _finish(self, task: Task, run_id: int, status: RunStatus, **outcome: object) -> None:
        withdrawn = ""  # a file published just as the task was canceled: deleted again
        with self.store.write() as tx:
            # The task's row lock orders this against a cancel: whichever comes second sees
            # the other's outcome, so a canceled task's run never ends as a success.
            # A write (import, generation) that committed cannot be taken back: it is
            # recorded as it happened, below. An export's file can: it is withdrawn.
            committed_write = status is RunStatus.SUCCESS and task.kind is not TaskKind.DATA_EXPORT
            canceled = tx.get_task(task.id, lock=True).status is TaskStatus.CANCELED
            if canceled and not committed_write:
                withdrawn = str(outcome.get("object_key", ""))
                status = RunStatus.CANCELED
                outcome = {"error": f"canceled by {tx.canceled_by(task.id) or 'someone'}"}
            ok = status is RunStatus.SUCCESS
            if not tx.finish_run(run_id, status, **outcome):  # type: ignore[arg-type]
                return  # already ended (recovered by another process)
            if status is RunStatus.CANCELED:  # the task is CANCELED already
                action, detail = "run_canceled", f"run {run_id}: {outcome['error']}"
            else:
                if not task.schedule.is_cron and not tx.set_status(
                    task.id,
                    TaskStatus.EXECUTE_SUCCESS if ok else TaskStatus.EXECUTE_FAILED,
                    expected={TaskStatus.EXECUTING},
                ):
                    if ok and tx.set_status(
                        task.id, TaskStatus.EXECUTE_SUCCESS, expected={TaskStatus.CANCELED}
                    ):
                        # A write that had committed when the cancel came: what happened wins.
                        tx.add_event(
                            task.id, "export", "cancel_too_late", f"run {run_id} had finished"
                        )
                    else:
                        # The task left EXECUTING while its run worked: the run's own outcome
                        # is still recorded, but the task keeps the state it was given.
                        log.warning(
                            "run ended after its task had moved on; task state left as it is",
                            extra={"task_id": task.id, "run_id": run_id},
                        )
                action = "run_succeeded" if ok else "run_failed"
                detail = (
                    f"run {run_id}: {_rows_text(outcome)}"
                    if ok
                    else f"run {run_id}: {outcome.get('error', '')}"
                )
            tx.add_event(task.id, "export", action, detail)
            tx.notify(task.id, "run_finished", run_id=run_id)
        self._count(task, run_id, status, outcome)
        if withdrawn:
            try:
                self.objects.delete(withdrawn)
            except Exception:  # retention removes it in the end; the run says canceled
                log.exception("could not delete a canceled run's file", extra={"run_id": run_id})
        log.info(
            "export %s",
            status.name.lower(),
            extra={"task_id": task.id, "run_id": run_id, "error": outcome.get("error", "")},
        )
        with self._changed:
            self._progress.pop(run_id, None)
            self._changed.notify_all()
        for hook in self._finished_hooks:
            try:
                hook(task, run_id)
            except Exception:
                log.exception(
                    "run-finished hook failed", extra={"task_id": task.id, "run_id": run_id}
                )

    def _count(
        self, task: Task, run_id: int, status: RunStatus, outcome: dict[str, object]
    ) -> None:
        kind, fmt, word = _kind(task), task.spec.type.name.lower(), status.name.lower()
        m = self.metrics
        m.runs.labels(kind, word, fmt, task.datasource).inc()
        rows, size = outcome.get("rows", 0), outcome.get("size", 0)
        if status is RunStatus.SUCCESS and isinstance(rows, int) and isinstance(size, int):
            m.run_rows.labels(kind, fmt, task.datasource).inc(rows)
            m.run_bytes.labels(kind, fmt, task.datasource).inc(size)
        started = self._started.pop(run_id, None)
        if started is not None:  # a run this process carried out (not a recovered one)
            m.run_duration.labels(kind, word, fmt).observe(time.monotonic() - started)

    def _set_progress(self, progress: Progress) -> None:
        with self._changed:
            self._progress[progress.run_id] = progress
            self._changed.notify_all()

    # -- watching ------------------------------------------------------------------------

    def watch(
        self,
        task_id: int,
        *,
        is_active: Callable[[], bool] = lambda: True,
        interval_s: float = 0.25,
    ) -> Iterator[Progress]:
        """Progress of the task's current run, at most 1/interval_s updates a second, ending
        with the run's outcome; a task with no run in progress gets its state once."""
        last: Progress | None = None
        while is_active():
            run = self._current_run(task_id)
            if run is None:
                return
            live = self._progress.get(run.id)
            if run.status is not RunStatus.EXECUTING:
                yield Progress(
                    run.id,
                    TaskStatus(int(run.status)),
                    run.rows,
                    run.bytes,
                    run.error or f"done: {run.filename}",
                )
                return
            current = live or Progress(  # counts as of the running replica's last heartbeat
                run.id, TaskStatus.EXECUTING, run.rows, run.bytes, "running on another replica"
            )
            if current != last:
                yield current
                last = current
            with self._changed:
                self._changed.wait(timeout=interval_s)
            time.sleep(interval_s / 2)  # throttle: a few updates a second at most

    def with_live_progress(self, run: Run) -> Run:
        """`run` with the rows and bytes written so far when this process is running it (the
        task store has them as of the last heartbeat)."""
        live = self._progress.get(run.id)
        if run.status is not RunStatus.EXECUTING or live is None:
            return run
        return replace(run, rows=live.rows, bytes=live.bytes)

    def _current_run(self, task_id: int) -> Run | None:
        with self.store.read() as tx:
            runs = tx.runs(task_id, limit=1)
        return runs[0] if runs else None

    # -- links ---------------------------------------------------------------------------

    def download_link(self, run: Run, expires_in: int) -> SignedUrl:
        storage = self.config.storage
        ttl = min(expires_in or storage.link_ttl_s, storage.link_ttl_max_s)
        if not run.object_key:  # an import that replaced no rows saved nothing
            raise WrongState(f"run {run.id} has no file to download")
        if not self.objects.exists(run.object_key):
            raise Unavailable(
                f"the file of run {run.id} is no longer stored (files are kept "
                f"{storage.retention_days:g} days); execute the task again"
            )
        return self.objects.presign_get(run.object_key, filename=run.filename, expires_in=ttl)

    # -- recovery and upkeep -------------------------------------------------------------

    def recover(self, cutoff: datetime | None = None) -> int:
        """Fail runs whose process is gone (heartbeat older than `cutoff`, by default the
        stale limit ago) and are not this process's own; returns how many."""
        cutoff = cutoff or datetime.now(UTC) - self.stale_after
        with self.store.read() as tx:
            stale = [
                r
                for r in tx.stale_runs(owner=None, older_than=cutoff)
                if r.id not in self._progress
            ]
        for run in stale:
            with self.store.read() as tx:
                task = tx.get_task(run.task_id)
            self._finish(task, run.id, RunStatus.FAILED, error=stopped_message(task))
            log.warning(
                "recovered a run abandoned by a stopped process",
                extra={"task_id": run.task_id, "run_id": run.id},
            )
        return len(stale)

    def _fail_own_runs(self) -> None:
        with self.store.read() as tx:
            own = tx.stale_runs(owner=self.instance_id, older_than=datetime.min.replace(tzinfo=UTC))
        for run in own:
            with self.store.read() as tx:
                task = tx.get_task(run.task_id)
            self._finish(task, run.id, RunStatus.FAILED, error=stopped_message(task))

    def _poll_cancels(self) -> None:
        """Stop this process's runs whose task was canceled through another replica."""
        while not self._stopping.wait(CANCEL_POLL_S):
            # A copy: export threads add and remove their runs meanwhile.
            running = [run_id for run_id, stop in list(self._stops.items()) if not stop.is_set()]
            if not running:
                continue
            try:
                with self.store.read() as tx:
                    canceled = tx.canceled_runs(running)
            except Exception:
                log.exception("could not look for canceled runs; retrying")
                continue
            for run_id, operator in canceled.items():
                self.stop_run(run_id, operator or "someone")

    def _maintain(self) -> None:
        last_retention = 0.0
        while not self._stopping.wait(self.heartbeat_s):
            try:
                with self.store.write() as tx:
                    tx.heartbeat(
                        {p.run_id: (p.rows, p.bytes) for p in list(self._progress.values())}
                    )
                self.recover()
                if time.monotonic() - last_retention > 3600:
                    last_retention = time.monotonic()
                    age = timedelta(days=self.config.storage.retention_days)
                    removed = self.objects.delete_older_than(age)
                    if removed:
                        log.info("retention removed %d old export files", removed)
                    _sweep_work_dir(self.work_dir, self.stale_after)
            except Exception:
                log.exception("export maintenance failed; retrying")


def _kind(task: Task) -> str:
    return task.kind.name.lower()


def _rows_text(outcome: dict[str, object]) -> str:
    text = f"{outcome.get('rows', 0)} rows"
    if "rows_skipped" in outcome:  # a write: what happened to the rows that existed
        text += (
            f" written, {outcome.get('rows_skipped', 0)} skipped, "
            f"{outcome.get('rows_updated', 0)} updated"
        )
    return text


class _Stop:
    """A run's stop: set once, by the cancel's operator; read from export threads."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.operator = ""

    def set(self, operator: str) -> None:
        if not self._event.is_set():
            self.operator = operator
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def _sweep_work_dir(work_dir: Path, older_than: timedelta) -> None:
    """Delete partial files left by killed processes (never published)."""
    cutoff = time.time() - older_than.total_seconds()
    for path in work_dir.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass
