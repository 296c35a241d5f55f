"""Wire messages (woxqaq.v1) ↔ domain values. Unknown enum numbers are refused here."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any, TypeVar, overload

from google.protobuf.timestamp_pb2 import Timestamp

from service.domain.errors import InvalidRequest, NotFound
from service.domain.generator_rules import ordered_params
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
from service.tasks import NewTask
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


def _generate_task_from_pb(req: pb.SubmitTaskRequest) -> NewTask:
    if not req.HasField("dgd") or req.HasField("ded") or req.HasField("dimd"):
        raise InvalidRequest(
            "TASK_KIND_DATA_GENERATE takes dgd (DataGenerateDetail) and no other detail"
        )
    dgd = req.dgd
    return NewTask(
        name=req.name.strip(),
        kind=TaskKind.DATA_GENERATE,
        dsn=req.dsn,
        spec=ExportSpec(
            database=dgd.database.strip(),
            reason=dgd.generate_reason.strip(),
            executor=enum_or_default(dgd.exector, Executor, "dgd.exector", Executor.AUTO),
        ),
        schedule=schedule_from_pb(req.schedule),
        generate_spec=generate_from_pb(dgd),
    )


def new_task_from_pb(req: pb.SubmitTaskRequest) -> NewTask:
    kind = enum_or_default(req.kind, TaskKind, "kind", None)
    if kind is None:
        raise InvalidRequest("kind is unspecified; set it to TASK_KIND_DATA_EXPORT")
    if kind is TaskKind.DATA_GENERATE:
        return _generate_task_from_pb(req)
    if kind is TaskKind.DATA_EXPORT and req.HasField("dgd"):
        raise InvalidRequest("TASK_KIND_DATA_EXPORT takes ded; dgd is for TASK_KIND_DATA_GENERATE")
    if not req.HasField("ded"):
        raise InvalidRequest("ded is missing: say what to export (ded.ebs or ded.eatt)")
    return NewTask(
        name=req.name.strip(),
        kind=kind,
        dsn=req.dsn,
        spec=spec_from_pb(req.ded),
        schedule=schedule_from_pb(req.schedule),
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


def schedule_to_pb(s: Schedule) -> pb.Schedule:
    return pb.Schedule(trigger=wire(s.trigger), cron=s.cron, timezone=s.timezone, channel=s.channel)


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


def preview_to_pb(preview: Preview) -> pb.TaskPreview:
    return pb.TaskPreview(
        columns=preview.columns,
        rows=[
            pb.PreviewRow(
                cells=[
                    pb.PreviewCell(null=True) if c is None else pb.PreviewCell(text=c) for c in r
                ]
            )
            for r in preview.rows
        ],
        total_rows=preview.total_rows,
        sha256=preview.sha256,
        estimated_rows=preview.estimated_rows,
    )


def task_to_pb(task: Task) -> pb.TaskListData:
    data = _task_to_pb(task)
    if task.generate_spec is not None:
        data.dgd.CopyFrom(generate_to_pb(task.generate_spec, task.spec))
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
        schedule=schedule_to_pb(task.schedule),
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
    return pb.TaskEvent(
        actor=event.actor, action=event.action, comment=event.comment, time=timestamp(event.time)
    )
