"""The per-kind seam of the workflow: how a task of one kind is checked, pre-checked and run.

`TaskManager` calls `validate` (at submit, before anything is recorded: a malformed request is
INVALID_ARGUMENT) and `precheck` (after the task is recorded, outside the store's
transaction); the run pool calls `run` on a worker thread once a run is recorded. Exports keep
their own path; every other kind registers a `KindHandler` in `Service`'s wiring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from service.datasources import Datasource
from service.domain.errors import WoxqaqError
from service.domain.model import GenerateSpec, Preview, Task

if TYPE_CHECKING:
    from service.app.tasks import NewTask


class RunFailed(WoxqaqError):
    """A run failed for a reason the user can act on; the message is recorded on the run."""


@dataclass(frozen=True)
class Precheck:
    problems: list[str] = field(default_factory=list)
    preview: Preview | None = None
    notes: list[str] = field(default_factory=list)  # recorded as pre-check events
    # A generation's seed and generators as the pre-check settled them: what the run uses.
    generate_spec: GenerateSpec | None = None


@dataclass(frozen=True)
class RunControl:
    """What a run is given: a cancel hook to poll and a progress callback (rows so far)."""

    cancelled: Callable[[], bool]
    progress: Callable[[int], None]


@dataclass(frozen=True)
class RunOutcome:
    """What a successful write run records: rows written, skipped, updated, and the backup
    (also the run's downloadable file) when an UPSERT saved one."""

    rows: int
    rows_skipped: int = 0
    rows_updated: int = 0
    backup_filename: str = ""
    backup_object_key: str = ""
    backup_bytes: int = 0


class KindHandler(Protocol):
    def validate(self, new: NewTask) -> None:
        """Raise InvalidRequest when the request is malformed (missing detail, bad sizes)."""
        ...

    def precheck(self, new: NewTask, ds: Datasource) -> Precheck: ...

    def run(self, task: Task, run_id: int, control: RunControl) -> RunOutcome:
        """Carry out the run; raise RunFailed (or another WoxqaqError) to fail it."""
        ...
