"""Fires scheduled exports: each approved CRON task's firings become runs, exactly once.

The task store is the one truth. Every tick reads the approved CRON tasks with the latest
firing each has dealt with and asks APScheduler's CronTrigger (in the task's timezone, DST
included) what has come due since; a due firing is claimed under the task's row lock by
`TaskManager.fire_schedule`. Hence approving starts a schedule and canceling stops it at
the next tick, a restart keeps every schedule, a firing missed while no service ran is run
once within the grace time or recorded as missed, and any number of replicas on one
PostgreSQL task store fire each run once, and keep firing while one of them is alive.

APScheduler's own scheduler and job stores are not used: they keep jobs per process, and
sharing a job store between schedulers is unsupported, which is what replicas would need.
On SQLite one process is assumed (its write lock would serialise replicas, but the
embedded store lives on one machine's disk).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service.app.tasks import TaskManager
from service.config import Config
from service.domain.model import Schedule, Task
from service.domain.schedule import fire_times
from service.store.repository import TaskStore

log = logging.getLogger(__name__)

# A firing found a few ticks late is on time, whatever the configured grace: the grace
# is about firings missed while no service ran, not about a busy tick.
MIN_GRACE = timedelta(seconds=60)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    def __init__(
        self,
        config: Config,
        store: TaskStore,
        tasks: TaskManager,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.clock = clock
        self.tick_s = config.scheduler.tick_s
        self.grace = max(timedelta(seconds=config.scheduler.misfire_grace_s), MIN_GRACE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._failing: set[int] = set()  # tasks whose firing failed: logged once, not per tick
        # Each schedule's first firing after what it has dealt with, so a tick costs a dict
        # lookup per schedule until something is due; keyed by what it was computed from.
        self._next_firing: dict[int, tuple[tuple[Schedule, datetime], datetime | None]] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the task store is down, say: try again next tick
                log.exception("scheduler tick failed; retrying")
            self._stop.wait(self.tick_s)

    def tick(self) -> list[int]:
        """Start what is due now; returns the ids of the runs started."""
        now = self.clock()
        with self.store.read() as tx:
            schedules = tx.active_schedules()
        started = []
        active = {task.id for task, _ in schedules}
        for task_id in self._next_firing.keys() - active:  # canceled or finished
            del self._next_firing[task_id]
        for task, dealt_with in schedules:
            if self._stop.is_set():
                break
            try:
                if not self._due(task, dealt_with, now):
                    continue
                run_id = self.tasks.fire_schedule(task.id, now, self.grace)
            except Exception:
                if task.id not in self._failing:
                    self._failing.add(task.id)
                    log.exception("could not fire a schedule", extra={"task_id": task.id})
                continue
            self._failing.discard(task.id)
            if run_id is not None:
                log.info("scheduled run started", extra={"task_id": task.id, "run_id": run_id})
                started.append(run_id)
        return started

    def _due(self, task: Task, dealt_with: datetime, now: datetime) -> bool:
        """Whether a firing of the task has come since `dealt_with` (what is due exactly,
        missed or coalesced, `fire_schedule` works out under the task's lock)."""
        basis = (task.schedule, dealt_with)
        cached = self._next_firing.get(task.id)
        if cached is None or cached[0] != basis:
            cached = self._next_firing[task.id] = (basis, next(fire_times(*basis), None))
        first = cached[1]
        return first is not None and first <= now
