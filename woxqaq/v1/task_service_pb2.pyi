import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_UNSPECIFIED: _ClassVar[Encoding]
    ENCODING_UTF8: _ClassVar[Encoding]
    ENCODING_GBK: _ClassVar[Encoding]
    ENCODING_UTF8_BOM: _ClassVar[Encoding]

class Exec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXEC_UNSPECIFIED: _ClassVar[Exec]
    EXEC_APPROVER: _ClassVar[Exec]
    EXEC_COMMITTER: _ClassVar[Exec]
    EXEC_AUTO: _ClassVar[Exec]

class ExportContent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_CONTENT_UNSPECIFIED: _ClassVar[ExportContent]
    EXPORT_CONTENT_DATA: _ClassVar[ExportContent]
    EXPORT_CONTENT_STRUCT: _ClassVar[ExportContent]
    EXPORT_CONTENT_ALL: _ClassVar[ExportContent]

class ExportMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_METHOD_UNSPECIFIED: _ClassVar[ExportMethod]
    EXPORT_METHOD_SQL: _ClassVar[ExportMethod]
    EXPORT_METHOD_TABLES: _ClassVar[ExportMethod]

class ExportType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_TYPE_UNSPECIFIED: _ClassVar[ExportType]
    EXPORT_TYPE_CSV: _ClassVar[ExportType]
    EXPORT_TYPE_EXCEL: _ClassVar[ExportType]

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    TASK_KIND_DATA_IMPORT: _ClassVar[TaskKind]
    TASK_KIND_DATA_EXPORT: _ClassVar[TaskKind]
    TASK_KIND_DATA_GENERATE: _ClassVar[TaskKind]

class TaskRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_ROLE_UNSPECIFIED: _ClassVar[TaskRole]
    TASK_ROLE_COMMITTER: _ClassVar[TaskRole]
    TASK_ROLE_TO_APPROVE: _ClassVar[TaskRole]
    TASK_ROLE_TO_EXECUTE: _ClassVar[TaskRole]
    TASK_ROLE_APPROVED: _ClassVar[TaskRole]
    TASK_ROLE_EXECUTED: _ClassVar[TaskRole]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_NOT_START: _ClassVar[TaskStatus]
    TASK_STATUS_PRE_CHECK: _ClassVar[TaskStatus]
    TASK_STATUS_PRE_CHECK_SUCCESS: _ClassVar[TaskStatus]
    TASK_STATUS_PRE_CHECK_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_APPROVING: _ClassVar[TaskStatus]
    TASK_STATUS_APPROVED: _ClassVar[TaskStatus]
    TASK_STATUS_NOT_APPROVED: _ClassVar[TaskStatus]
    TASK_STATUS_EXECUTING: _ClassVar[TaskStatus]
    TASK_STATUS_EXECUTE_SUCCESS: _ClassVar[TaskStatus]
    TASK_STATUS_EXECUTE_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELED: _ClassVar[TaskStatus]

class TriggerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_KIND_UNSPECIFIED: _ClassVar[TriggerKind]
    TRIGGER_KIND_CURRENT: _ClassVar[TriggerKind]
    TRIGGER_KIND_CRON: _ClassVar[TriggerKind]

class ImportMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_MODE_UNSPECIFIED: _ClassVar[ImportMode]
    IMPORT_MODE_INSERT: _ClassVar[ImportMode]
    IMPORT_MODE_SKIP_EXISTING: _ClassVar[ImportMode]
    IMPORT_MODE_UPSERT: _ClassVar[ImportMode]
ENCODING_UNSPECIFIED: Encoding
ENCODING_UTF8: Encoding
ENCODING_GBK: Encoding
ENCODING_UTF8_BOM: Encoding
EXEC_UNSPECIFIED: Exec
EXEC_APPROVER: Exec
EXEC_COMMITTER: Exec
EXEC_AUTO: Exec
EXPORT_CONTENT_UNSPECIFIED: ExportContent
EXPORT_CONTENT_DATA: ExportContent
EXPORT_CONTENT_STRUCT: ExportContent
EXPORT_CONTENT_ALL: ExportContent
EXPORT_METHOD_UNSPECIFIED: ExportMethod
EXPORT_METHOD_SQL: ExportMethod
EXPORT_METHOD_TABLES: ExportMethod
EXPORT_TYPE_UNSPECIFIED: ExportType
EXPORT_TYPE_CSV: ExportType
EXPORT_TYPE_EXCEL: ExportType
TASK_KIND_UNSPECIFIED: TaskKind
TASK_KIND_DATA_IMPORT: TaskKind
TASK_KIND_DATA_EXPORT: TaskKind
TASK_KIND_DATA_GENERATE: TaskKind
TASK_ROLE_UNSPECIFIED: TaskRole
TASK_ROLE_COMMITTER: TaskRole
TASK_ROLE_TO_APPROVE: TaskRole
TASK_ROLE_TO_EXECUTE: TaskRole
TASK_ROLE_APPROVED: TaskRole
TASK_ROLE_EXECUTED: TaskRole
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_NOT_START: TaskStatus
TASK_STATUS_PRE_CHECK: TaskStatus
TASK_STATUS_PRE_CHECK_SUCCESS: TaskStatus
TASK_STATUS_PRE_CHECK_FAILED: TaskStatus
TASK_STATUS_APPROVING: TaskStatus
TASK_STATUS_APPROVED: TaskStatus
TASK_STATUS_NOT_APPROVED: TaskStatus
TASK_STATUS_EXECUTING: TaskStatus
TASK_STATUS_EXECUTE_SUCCESS: TaskStatus
TASK_STATUS_EXECUTE_FAILED: TaskStatus
TASK_STATUS_CANCELED: TaskStatus
TRIGGER_KIND_UNSPECIFIED: TriggerKind
TRIGGER_KIND_CURRENT: TriggerKind
TRIGGER_KIND_CRON: TriggerKind
IMPORT_MODE_UNSPECIFIED: ImportMode
IMPORT_MODE_INSERT: ImportMode
IMPORT_MODE_SKIP_EXISTING: ImportMode
IMPORT_MODE_UPSERT: ImportMode

class ApproveRequest(_message.Message):
    __slots__ = ("task_id", "approver", "comment")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    approver: str
    comment: str
    def __init__(self, task_id: _Optional[int] = ..., approver: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class ApproveResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class DataExportDetail(_message.Message):
    __slots__ = ("database", "ebs", "eatt", "type", "encoding", "export_reason", "exector")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    EBS_FIELD_NUMBER: _ClassVar[int]
    EATT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    EXPORT_REASON_FIELD_NUMBER: _ClassVar[int]
    EXECTOR_FIELD_NUMBER: _ClassVar[int]
    database: str
    ebs: ExportBySQL
    eatt: ExportAccordingToTable
    type: ExportType
    encoding: Encoding
    export_reason: str
    exector: Exec
    def __init__(self, database: _Optional[str] = ..., ebs: _Optional[_Union[ExportBySQL, _Mapping]] = ..., eatt: _Optional[_Union[ExportAccordingToTable, _Mapping]] = ..., type: _Optional[_Union[ExportType, str]] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., export_reason: _Optional[str] = ..., exector: _Optional[_Union[Exec, str]] = ...) -> None: ...

class ExportAccordingToTable(_message.Message):
    __slots__ = ("export_all", "content", "option")
    class TableOption(_message.Message):
        __slots__ = ("table", "all_field", "fields", "filter")
        TABLE_FIELD_NUMBER: _ClassVar[int]
        ALL_FIELD_FIELD_NUMBER: _ClassVar[int]
        FIELDS_FIELD_NUMBER: _ClassVar[int]
        FILTER_FIELD_NUMBER: _ClassVar[int]
        table: str
        all_field: bool
        fields: _containers.RepeatedScalarFieldContainer[str]
        filter: str
        def __init__(self, table: _Optional[str] = ..., all_field: _Optional[bool] = ..., fields: _Optional[_Iterable[str]] = ..., filter: _Optional[str] = ...) -> None: ...
    EXPORT_ALL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    OPTION_FIELD_NUMBER: _ClassVar[int]
    export_all: bool
    content: ExportContent
    option: _containers.RepeatedCompositeFieldContainer[ExportAccordingToTable.TableOption]
    def __init__(self, export_all: _Optional[bool] = ..., content: _Optional[_Union[ExportContent, str]] = ..., option: _Optional[_Iterable[_Union[ExportAccordingToTable.TableOption, _Mapping]]] = ...) -> None: ...

class ExportBySQL(_message.Message):
    __slots__ = ("statement",)
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    statement: str
    def __init__(self, statement: _Optional[str] = ...) -> None: ...

class GetTaskDetailRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskDetailResponse(_message.Message):
    __slots__ = ("ok", "ded", "task", "runs", "precheck_messages", "events", "preview")
    OK_FIELD_NUMBER: _ClassVar[int]
    DED_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    PRECHECK_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    ded: DataExportDetail
    task: TaskListData
    runs: _containers.RepeatedCompositeFieldContainer[TaskRun]
    precheck_messages: _containers.RepeatedScalarFieldContainer[str]
    events: _containers.RepeatedCompositeFieldContainer[TaskEvent]
    preview: TaskPreview
    def __init__(self, ok: _Optional[bool] = ..., ded: _Optional[_Union[DataExportDetail, _Mapping]] = ..., task: _Optional[_Union[TaskListData, _Mapping]] = ..., runs: _Optional[_Iterable[_Union[TaskRun, _Mapping]]] = ..., precheck_messages: _Optional[_Iterable[str]] = ..., events: _Optional[_Iterable[_Union[TaskEvent, _Mapping]]] = ..., preview: _Optional[_Union[TaskPreview, _Mapping]] = ...) -> None: ...

class ListTaskRequest(_message.Message):
    __slots__ = ("kind", "current", "page_size", "status", "dsn", "role", "task_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DSN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    kind: TaskKind
    current: int
    page_size: int
    status: TaskStatus
    dsn: str
    role: TaskRole
    task_id: str
    def __init__(self, kind: _Optional[_Union[TaskKind, str]] = ..., current: _Optional[int] = ..., page_size: _Optional[int] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., dsn: _Optional[str] = ..., role: _Optional[_Union[TaskRole, str]] = ..., task_id: _Optional[str] = ...) -> None: ...

class ListTaskResponse(_message.Message):
    __slots__ = ("ok", "data", "page_size", "total")
    OK_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    data: _containers.RepeatedCompositeFieldContainer[TaskListData]
    page_size: int
    total: int
    def __init__(self, ok: _Optional[bool] = ..., data: _Optional[_Iterable[_Union[TaskListData, _Mapping]]] = ..., page_size: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class RejectRequest(_message.Message):
    __slots__ = ("task_id", "approver", "comment")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    approver: str
    comment: str
    def __init__(self, task_id: _Optional[int] = ..., approver: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class RejectResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = ("name", "kind", "dsn", "ded", "schedule", "dimd", "dgd")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DSN_FIELD_NUMBER: _ClassVar[int]
    DED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    DIMD_FIELD_NUMBER: _ClassVar[int]
    DGD_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TaskKind
    dsn: str
    ded: DataExportDetail
    schedule: Schedule
    dimd: DataImportDetail
    dgd: DataGenerateDetail
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., dsn: _Optional[str] = ..., ded: _Optional[_Union[DataExportDetail, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., dimd: _Optional[_Union[DataImportDetail, _Mapping]] = ..., dgd: _Optional[_Union[DataGenerateDetail, _Mapping]] = ...) -> None: ...

class SubmitTaskResponse(_message.Message):
    __slots__ = ("ok", "task_id")
    OK_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    task_id: str
    def __init__(self, ok: _Optional[bool] = ..., task_id: _Optional[str] = ...) -> None: ...

class TaskListData(_message.Message):
    __slots__ = ("id", "dsn", "kind", "database", "create_time", "update_time", "submitter", "status", "ded", "schedule", "dimd", "dgd")
    ID_FIELD_NUMBER: _ClassVar[int]
    DSN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SUBMITTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    DIMD_FIELD_NUMBER: _ClassVar[int]
    DGD_FIELD_NUMBER: _ClassVar[int]
    id: str
    dsn: str
    kind: TaskKind
    database: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    submitter: str
    status: TaskStatus
    ded: DataExportDetail
    schedule: Schedule
    dimd: DataImportDetail
    dgd: DataGenerateDetail
    def __init__(self, id: _Optional[str] = ..., dsn: _Optional[str] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., database: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., submitter: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., ded: _Optional[_Union[DataExportDetail, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., dimd: _Optional[_Union[DataImportDetail, _Mapping]] = ..., dgd: _Optional[_Union[DataGenerateDetail, _Mapping]] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("trigger", "cron", "timezone", "channel", "next_fire_times")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_TIMES_FIELD_NUMBER: _ClassVar[int]
    trigger: TriggerKind
    cron: str
    timezone: str
    channel: str
    next_fire_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, trigger: _Optional[_Union[TriggerKind, str]] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., channel: _Optional[str] = ..., next_fire_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class TaskRun(_message.Message):
    __slots__ = ("id", "status", "executor", "start_time", "end_time", "rows", "bytes", "filename", "error", "rows_skipped", "rows_updated", "backup_filename")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROWS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ROWS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FILENAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: TaskStatus
    executor: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    rows: int
    bytes: int
    filename: str
    error: str
    rows_skipped: int
    rows_updated: int
    backup_filename: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., executor: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rows: _Optional[int] = ..., bytes: _Optional[int] = ..., filename: _Optional[str] = ..., error: _Optional[str] = ..., rows_skipped: _Optional[int] = ..., rows_updated: _Optional[int] = ..., backup_filename: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("actor", "action", "comment", "time")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    actor: str
    action: str
    comment: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, actor: _Optional[str] = ..., action: _Optional[str] = ..., comment: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("task_id", "executor")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    executor: str
    def __init__(self, task_id: _Optional[int] = ..., executor: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("ok", "run_id")
    OK_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    run_id: str
    def __init__(self, ok: _Optional[bool] = ..., run_id: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("task_id", "operator", "comment")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    task_id: int
    operator: str
    comment: str
    def __init__(self, task_id: _Optional[int] = ..., operator: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class GetDownloadUrlRequest(_message.Message):
    __slots__ = ("task_id", "run_id", "expires_in")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    run_id: str
    expires_in: int
    def __init__(self, task_id: _Optional[str] = ..., run_id: _Optional[str] = ..., expires_in: _Optional[int] = ...) -> None: ...

class GetDownloadUrlResponse(_message.Message):
    __slots__ = ("url", "expire_time", "filename")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    url: str
    expire_time: _timestamp_pb2.Timestamp
    filename: str
    def __init__(self, url: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., filename: _Optional[str] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task_id", "run_id", "status", "rows", "bytes", "message")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    run_id: str
    status: TaskStatus
    rows: int
    bytes: int
    message: str
    def __init__(self, task_id: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., rows: _Optional[int] = ..., bytes: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class DataImportDetail(_message.Message):
    __slots__ = ("database", "table", "object_key", "format", "encoding", "mode", "columns", "no_header", "sheet", "import_reason", "exector")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    NO_HEADER_FIELD_NUMBER: _ClassVar[int]
    SHEET_FIELD_NUMBER: _ClassVar[int]
    IMPORT_REASON_FIELD_NUMBER: _ClassVar[int]
    EXECTOR_FIELD_NUMBER: _ClassVar[int]
    database: str
    table: str
    object_key: str
    format: ExportType
    encoding: Encoding
    mode: ImportMode
    columns: _containers.RepeatedScalarFieldContainer[str]
    no_header: bool
    sheet: str
    import_reason: str
    exector: Exec
    def __init__(self, database: _Optional[str] = ..., table: _Optional[str] = ..., object_key: _Optional[str] = ..., format: _Optional[_Union[ExportType, str]] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., mode: _Optional[_Union[ImportMode, str]] = ..., columns: _Optional[_Iterable[str]] = ..., no_header: _Optional[bool] = ..., sheet: _Optional[str] = ..., import_reason: _Optional[str] = ..., exector: _Optional[_Union[Exec, str]] = ...) -> None: ...

class ColumnGenerator(_message.Message):
    __slots__ = ("column", "kind", "params", "null_ratio")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NULL_RATIO_FIELD_NUMBER: _ClassVar[int]
    column: str
    kind: str
    params: _containers.ScalarMap[str, str]
    null_ratio: float
    def __init__(self, column: _Optional[str] = ..., kind: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., null_ratio: _Optional[float] = ...) -> None: ...

class DataGenerateDetail(_message.Message):
    __slots__ = ("database", "table", "rows", "seed", "columns", "mode", "generate_reason", "exector")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    GENERATE_REASON_FIELD_NUMBER: _ClassVar[int]
    EXECTOR_FIELD_NUMBER: _ClassVar[int]
    database: str
    table: str
    rows: int
    seed: int
    columns: _containers.RepeatedCompositeFieldContainer[ColumnGenerator]
    mode: ImportMode
    generate_reason: str
    exector: Exec
    def __init__(self, database: _Optional[str] = ..., table: _Optional[str] = ..., rows: _Optional[int] = ..., seed: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[ColumnGenerator, _Mapping]]] = ..., mode: _Optional[_Union[ImportMode, str]] = ..., generate_reason: _Optional[str] = ..., exector: _Optional[_Union[Exec, str]] = ...) -> None: ...

class PreviewCell(_message.Message):
    __slots__ = ("text", "null")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NULL_FIELD_NUMBER: _ClassVar[int]
    text: str
    null: bool
    def __init__(self, text: _Optional[str] = ..., null: _Optional[bool] = ...) -> None: ...

class PreviewRow(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[PreviewCell]
    def __init__(self, cells: _Optional[_Iterable[_Union[PreviewCell, _Mapping]]] = ...) -> None: ...

class TaskPreview(_message.Message):
    __slots__ = ("columns", "rows", "total_rows", "sha256", "estimated_rows")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_ROWS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[PreviewRow]
    total_rows: int
    sha256: str
    estimated_rows: int
    def __init__(self, columns: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[PreviewRow, _Mapping]]] = ..., total_rows: _Optional[int] = ..., sha256: _Optional[str] = ..., estimated_rows: _Optional[int] = ...) -> None: ...
