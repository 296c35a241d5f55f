"""Values that cross layers: what a task asks for and what the workflow knows of it.

Enum numbers equal the wire's (woxqaq.v1) so adapters convert by value, but nothing
here depends on the generated code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from woxqaq.generator_rules import ColumnGenerator  # the contract's; re-exported here


class TaskStatus(enum.IntEnum):
    NOT_START = 1
    PRE_CHECK = 2
    PRE_CHECK_SUCCESS = 3
    PRE_CHECK_FAILED = 4
    APPROVING = 5
    APPROVED = 6
    NOT_APPROVED = 7
    EXECUTING = 8
    EXECUTE_SUCCESS = 9
    EXECUTE_FAILED = 10
    CANCELED = 11


class TaskKind(enum.IntEnum):
    DATA_IMPORT = 1
    DATA_EXPORT = 2
    DATA_GENERATE = 3


class ExportType(enum.IntEnum):
    CSV = 1
    EXCEL = 2


class Encoding(enum.IntEnum):
    UTF8 = 1
    GBK = 2
    UTF8_BOM = 3  # UTF-8 starting with a byte-order mark, for Excel users (CSV only)


class Content(enum.IntEnum):
    DATA = 1
    STRUCT = 2
    ALL = 3


class Executor(enum.IntEnum):
    """Who starts an approved task (the wire's `Exec`)."""

    APPROVER = 1
    COMMITTER = 2
    AUTO = 3


class Trigger(enum.IntEnum):
    CURRENT = 1
    CRON = 2


class Role(enum.IntEnum):
    """ListTaskDetail filters relative to the acting user."""

    COMMITTER = 1
    TO_APPROVE = 2
    TO_EXECUTE = 3
    APPROVED = 4
    EXECUTED = 5


class ImportMode(enum.IntEnum):
    """What a write does with a row whose key already exists (the wire's `ImportMode`)."""

    INSERT = 1  # fails the whole task
    SKIP_EXISTING = 2  # leaves the existing row alone, counted as skipped
    UPSERT = 3  # updates it, after saving the row it replaces


class RunStatus(enum.IntEnum):
    """A run's status uses the task status numbers of the execution phase."""

    EXECUTING = 8
    SUCCESS = 9
    FAILED = 10
    CANCELED = 11  # stopped by a cancel: nothing published


@dataclass(frozen=True)
class TableOption:
    table: str
    all_fields: bool = True
    fields: tuple[str, ...] = ()
    filter: str = ""


@dataclass(frozen=True)
class ExportSpec:
    """What to export. SQL mode when `statement` is set, table mode otherwise."""

    database: str = ""
    statement: str = ""
    export_all: bool = False
    tables: tuple[TableOption, ...] = ()
    content: Content = Content.DATA
    type: ExportType = ExportType.CSV
    encoding: Encoding = Encoding.UTF8
    reason: str = ""
    executor: Executor = Executor.AUTO

    @property
    def is_sql(self) -> bool:
        return bool(self.statement.strip())


@dataclass(frozen=True)
class ImportSpec:
    """What an import writes: an uploaded file into one table. The task's `spec` carries
    its database, reason and executor, the fields every kind has."""

    table: str
    object_key: str
    format: ExportType = ExportType.CSV
    encoding: Encoding = Encoding.UTF8
    mode: ImportMode = ImportMode.INSERT
    columns: tuple[str, ...] = ()  # the table column of each file column; empty: the header's
    no_header: bool = False
    sheet: str = ""  # EXCEL: the sheet to read; empty: the first


@dataclass(frozen=True)
class GenerateSpec:
    """What a generation writes: `rows` made-up rows into one table. The task's `spec`
    carries its database, reason and executor, the fields every kind has."""

    table: str
    rows: int
    # 0 until the pre-check picks one; from then on the seed the run uses.
    seed: int = 0
    # As requested; after the pre-check, every generator the run uses (proposals included).
    columns: tuple[ColumnGenerator, ...] = ()
    mode: ImportMode = ImportMode.INSERT


@dataclass(frozen=True)
class Preview:
    """What approvers see before they vote (the wire's TaskPreview). Cells are text, None
    for NULL."""

    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str | None, ...], ...] = ()
    total_rows: int = 0
    sha256: str = ""
    estimated_rows: int = 0
    # import: each file column and the table column it goes to
    mapping: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Schedule:
    trigger: Trigger = Trigger.CURRENT
    cron: str = ""
    timezone: str = "UTC"
    channel: str = ""

    @property
    def is_cron(self) -> bool:
        return self.trigger is Trigger.CRON


@dataclass(frozen=True)
class Event:
    actor: str
    action: str
    comment: str
    time: datetime
    # The authenticated principal that acted for `actor` (the bot for a Slack user), else "".
    principal: str = ""


@dataclass(frozen=True)
class Run:
    id: int
    task_id: int
    status: RunStatus
    executor: str
    start_time: datetime | None
    end_time: datetime | None
    rows: int = 0
    bytes: int = 0
    filename: str = ""
    object_key: str = ""
    error: str = ""
    scheduled_for: datetime | None = None
    # Imports and generations: `rows` counts rows written; these the rows left alone and
    # updated, and the UPSERT's backup of what it replaced.
    rows_skipped: int = 0
    rows_updated: int = 0
    backup_filename: str = ""
    backup_object_key: str = ""


@dataclass(frozen=True)
class Task:
    id: int
    name: str
    kind: TaskKind
    datasource: str
    submitter: str
    status: TaskStatus
    spec: ExportSpec
    schedule: Schedule
    created_at: datetime
    updated_at: datetime
    required_approvals: int = 1
    precheck_messages: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()  # who has approved so far
    executors: tuple[str, ...] = ()  # who has started a run of it
    import_spec: ImportSpec | None = None  # DATA_IMPORT only
    generate_spec: GenerateSpec | None = None  # DATA_GENERATE only


@dataclass(frozen=True)
class TaskDetail:
    task: Task
    runs: tuple[Run, ...] = ()  # newest first
    events: tuple[Event, ...] = ()  # oldest first
    preview: Preview | None = None


@dataclass(frozen=True)
class TaskQuery:
    """ListTaskDetail filters; `user` is the acting user that roles are relative to."""

    user: str = ""
    kind: TaskKind | None = None
    status: TaskStatus | None = None
    datasource: str = ""
    role: Role | None = None
    task_id: int | None = None
    page: int = 1
    page_size: int = 20
    # Datasources the user may see (None: all) and those where they approve.
    visible_datasources: frozenset[str] | None = None
    approver_of: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Page:
    items: tuple[Task, ...]
    total: int
    page_size: int


@dataclass(frozen=True)
class Backlog:
    """What the task store holds waiting at one moment (for metrics)."""

    awaiting_approval: int = 0
    oldest_approval_wait_s: float = 0.0
    outbox_pending: int = 0
    outbox_oldest_pending_s: float = 0.0


@dataclass(frozen=True)
class Notification:
    """One entry of the outbox: what people must be told about a task, and how its delivery
    has gone so far."""

    id: int
    task_id: int
    run_id: int | None
    kind: str
    actor: str
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class MessageRef:
    """A chat message posted for a task; a later delivery for the same purpose edits it."""

    channel: str
    ts: str
    purpose: str
