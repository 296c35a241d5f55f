"""Wire messages (woxqaq.v1) ↔ domain values. Unknown enum numbers are refused here."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any, TypeVar, overload

from google.protobuf.timestamp_pb2 import Timestamp

from service.app.tasks import NewTask
from service.domain.errors import InvalidRequest, NotFound
from service.domain.model import (
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
    Preview,
    Role,
    Run,
    Schedule,
    TableOption,
    Task,
    TaskKind,
    TaskStatus,
    Trigger,
)
from service.domain.schedule import next_fire_times
from woxqaq.generator_rules import ordered_params
from woxqaq.v1 import task_service_pb2 as pb

E = TypeVar("E", bound=IntEnum)
MAX_DB_ID = 2**63 - 1  # ids are BIGINT in the store; larger ones cannot exist


@overload
def enum_or_default(value: int, enum: type[E], field: str, default: E) -> E: ...
@overload
def enum_or_default(value: int, enum: type[E], field: str, default: None) -> E | None: ...
def enum_or_default(value: int, enum: type[E], field: str, default: E | None) -> E | None:
    """0 (unspecified) gives `default`; a number the enum does not have is INVALID_ARGUMENT."""
    if value == 0:
        return default
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(f"{m.name} ({m.value})" for m in enum)
        raise InvalidRequest(
            f"{field} = {value} is not a known value; use one of: {names}"
        ) from None


def task_id_from_string(value: str, field: str = "task_id") -> int:
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise InvalidRequest(f"{field} {value[:40]!r} is not a task id; give its decimal number")
    return task_id_from_int(int(text), field)


def task_id_from_int(value: int, field: str = "task_id") -> int:
    if value <= 0:
        raise InvalidRequest(f"{field} is missing; give the task's number")
    if value > 2**64 - 1:
        raise InvalidRequest(f"{field} {value} is beyond the uint64 range")
    if value > MAX_DB_ID:
        raise NotFound(f"task {value} does not exist")
    return value


def wire(value: IntEnum) -> Any:
    """A domain enum as the wire's enum number (the generated stubs type them as wrappers)."""
    return int(value)


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


# -- requests → domain ---------------------------------------------------------------------


def spec_from_pb(ded: pb.DataExportDetail) -> ExportSpec:
    eatt = ded.eatt
    return ExportSpec(
        database=ded.database.strip(),
        statement=ded.ebs.statement,
        export_all=eatt.export_all,
        tables=tuple(
            TableOption(
                table=o.table.strip(),
                all_fields=o.all_field or not o.fields,
                fields=tuple(f.strip() for f in o.fields),
                filter=o.filter.strip(),
            )
            for o in eatt.option
        ),
        content=enum_or_default(eatt.content, Content, "ded.eatt.content", Content.DATA),
        type=enum_or_default(ded.type, ExportType, "ded.type", ExportType.CSV),
        encoding=enum_or_default(ded.encoding, Encoding, "ded.encoding", Encoding.UTF8),
        reason=ded.export_reason.strip(),
        executor=enum_or_default(ded.exector, Executor, "ded.exector", Executor.AUTO),
    )


def schedule_from_pb(s: pb.Schedule) -> Schedule:
    return Schedule(
        trigger=enum_or_default(s.trigger, Trigger, "schedule.trigger", Trigger.CURRENT),
        cron=" ".join(s.cron.split()),
        timezone=s.timezone.strip() or "UTC",
        channel=s.channel.strip(),
    )


def generate_from_pb(dgd: pb.DataGenerateDetail) -> GenerateSpec:
    return GenerateSpec(
        table=dgd.table.strip(),
        rows=dgd.rows,
        seed=dgd.seed,
        columns=tuple(
            ColumnGenerator(
                g.column.strip(),
                g.kind.strip().lower(),
                ordered_params(g.kind.strip().lower(), g.params),
                g.null_ratio,
            )
            for g in dgd.columns
        ),
        mode=enum_or_default(dgd.mode, ImportMode, "dgd.mode", ImportMode.INSERT),
    )


# Each kind takes its own detail field of SubmitTaskRequest.
DETAIL_FIELD = {
    TaskKind.DATA_EXPORT: "ded",
    TaskKind.DATA_IMPORT: "dimd",
    TaskKind.DATA_GENERATE: "dgd",
}
_MISSING_DETAIL = {
    TaskKind.DATA_EXPORT: "say what to export (ded.ebs or ded.eatt)",
    TaskKind.DATA_IMPORT: "say which uploaded file goes into which table",
    TaskKind.DATA_GENERATE: "say which table gets how many rows",
}


def new_task_from_pb(req: pb.SubmitTaskRequest) -> NewTask:
    kind = enum_or_default(req.kind, TaskKind, "kind", None)
    if kind is None:
        raise InvalidRequest(
            "kind is unspecified; set it to TASK_KIND_DATA_EXPORT, TASK_KIND_DATA_IMPORT "
            "or TASK_KIND_DATA_GENERATE"
        )
    field = DETAIL_FIELD[kind]
    if not req.HasField(field):  # type: ignore[arg-type]
        raise InvalidRequest(f"{field} is missing: {_MISSING_DETAIL[kind]}")
    for other in DETAIL_FIELD.values():
        if other != field and req.HasField(other):  # type: ignore[arg-type]
            raise InvalidRequest(f"a {kind.name} task takes {field}, not {other}: drop {other}")
    name, schedule = req.name.strip(), schedule_from_pb(req.schedule)
    if kind is TaskKind.DATA_IMPORT:
        d = req.dimd
        spec = _common_spec(d.database, d.import_reason, d.exector, "dimd")
        return NewTask(name, kind, req.dsn, spec, schedule, import_from_pb(d))
    if kind is TaskKind.DATA_GENERATE:
        g = req.dgd
        spec = _common_spec(g.database, g.generate_reason, g.exector, "dgd")
        return NewTask(name, kind, req.dsn, spec, schedule, generate_spec=generate_from_pb(g))
    return NewTask(name, kind, req.dsn, spec_from_pb(req.ded), schedule)


def _common_spec(database: str, reason: str, exector: int, field: str) -> ExportSpec:
    """What every kind's detail has: database, reason and who runs it."""
    return ExportSpec(
        database=database.strip(),
        reason=reason.strip(),
        executor=enum_or_default(exector, Executor, f"{field}.exector", Executor.AUTO),
    )


def import_from_pb(d: pb.DataImportDetail) -> ImportSpec:
    # A file that starts with a BOM reads as UTF-8 either way.
    encoding = Encoding.UTF8 if d.encoding == pb.ENCODING_UTF8_BOM else d.encoding
    return ImportSpec(
        table=d.table.strip(),
        object_key=d.object_key.strip(),
        format=enum_or_default(d.format, ExportType, "dimd.format", ExportType.CSV),
        encoding=enum_or_default(encoding, Encoding, "dimd.encoding", Encoding.UTF8),
        mode=enum_or_default(d.mode, ImportMode, "dimd.mode", ImportMode.INSERT),
        columns=tuple(c.strip() for c in d.columns),
        no_header=d.no_header,
        sheet=d.sheet.strip(),
    )


def role_from_pb(value: int) -> Role | None:
    return enum_or_default(value, Role, "role", None)


def status_from_pb(value: int) -> TaskStatus | None:
    return enum_or_default(value, TaskStatus, "status", None)


def kind_from_pb(value: int) -> TaskKind | None:
    return enum_or_default(value, TaskKind, "kind", None)


# -- domain → responses --------------------------------------------------------------------


def spec_to_pb(spec: ExportSpec) -> pb.DataExportDetail:
    ded = pb.DataExportDetail(
        database=spec.database,
        type=wire(spec.type),
        encoding=wire(spec.encoding),
        export_reason=spec.reason,
        exector=wire(spec.executor),
    )
    if spec.is_sql:
        ded.ebs.statement = spec.statement
    ded.eatt.content = wire(spec.content)
    ded.eatt.export_all = spec.export_all
    for t in spec.tables:
        ded.eatt.option.add(table=t.table, all_field=t.all_fields, fields=t.fields, filter=t.filter)
    return ded


# A schedule that may still fire: its next firings are shown (approvers see what they approve).
FIRING_STATES = frozenset({TaskStatus.PRE_CHECK_SUCCESS, TaskStatus.APPROVING, TaskStatus.APPROVED})
NEXT_FIRINGS = 3


def schedule_to_pb(s: Schedule, *, may_fire: bool = False) -> pb.Schedule:
    """The schedule; with `may_fire`, its next firings computed here, so every client shows
    the same dates whatever its own tzdata and cron library."""
    upcoming: list[datetime] = []
    if may_fire and s.is_cron:
        try:
            upcoming = next_fire_times(s, NEXT_FIRINGS)
        except (ValueError, KeyError):  # a bad expression or zone: the pre-check says so
            upcoming = []
    return pb.Schedule(
        trigger=wire(s.trigger),
        cron=s.cron,
        timezone=s.timezone,
        channel=s.channel,
        next_fire_times=[timestamp(t) for t in upcoming],
    )


def generate_to_pb(spec: GenerateSpec, common: ExportSpec) -> pb.DataGenerateDetail:
    return pb.DataGenerateDetail(
        database=common.database,
        table=spec.table,
        rows=spec.rows,
        seed=spec.seed,
        columns=[
            pb.ColumnGenerator(
                column=g.column, kind=g.kind, params=dict(g.params), null_ratio=g.null_ratio
            )
            for g in spec.columns
        ],
        mode=wire(spec.mode),
        generate_reason=common.reason,
        exector=wire(common.executor),
    )


def import_to_pb(spec: ImportSpec, task: Task) -> pb.DataImportDetail:
    return pb.DataImportDetail(
        database=task.spec.database,
        table=spec.table,
        object_key=spec.object_key,
        format=wire(spec.format),
        encoding=wire(spec.encoding),
        mode=wire(spec.mode),
        columns=spec.columns,
        no_header=spec.no_header,
        sheet=spec.sheet,
        import_reason=task.spec.reason,
        exector=wire(task.spec.executor),
    )


def preview_to_pb(preview: Preview | None) -> pb.TaskPreview | None:
    if preview is None:
        return None
    return pb.TaskPreview(
        columns=preview.columns,
        rows=[
            pb.PreviewRow(cells=[pb.PreviewCell(text=c or "", null=c is None) for c in row])
            for row in preview.rows
        ],
        total_rows=preview.total_rows,
        sha256=preview.sha256,
        estimated_rows=preview.estimated_rows,
    )


def task_to_pb(task: Task) -> pb.TaskListData:
    data = _task_to_pb(task)
    if task.import_spec is not None:
        data.dimd.CopyFrom(import_to_pb(task.import_spec, task))
        data.ClearField("ded")
    if task.generate_spec is not None:
        data.dgd.CopyFrom(generate_to_pb(task.generate_spec, task.spec))
        data.ClearField("ded")
    return data


def _task_to_pb(task: Task) -> pb.TaskListData:
    return pb.TaskListData(
        id=str(task.id),
        dsn=task.datasource,
        kind=wire(task.kind),
        database=task.spec.database,
        create_time=timestamp(task.created_at),
        update_time=timestamp(task.updated_at),
        submitter=task.submitter,
        status=wire(task.status),
        ded=spec_to_pb(task.spec),
        schedule=schedule_to_pb(task.schedule, may_fire=task.status in FIRING_STATES),
    )


def run_to_pb(run: Run) -> pb.TaskRun:
    return pb.TaskRun(
        id=str(run.id),
        status=wire(run.status),
        executor=run.executor,
        start_time=timestamp(run.start_time),
        end_time=timestamp(run.end_time),
        rows=run.rows,
        bytes=run.bytes,
        filename=run.filename,
        error=run.error,
        rows_skipped=run.rows_skipped,
        rows_updated=run.rows_updated,
        backup_filename=run.backup_filename,
    )


def event_to_pb(event: Event) -> pb.TaskEvent:
    """`actor` is the user; a principal that acted for them leads the comment as
    "[via NAME] " (TaskEvent has no field of its own for it)."""
    comment = f"[via {event.principal}] {event.comment}" if event.principal else event.comment
    return pb.TaskEvent(
        actor=event.actor, action=event.action, comment=comment.rstrip(), time=timestamp(event.time)
    )
