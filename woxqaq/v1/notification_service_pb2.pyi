import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from woxqaq.v1 import task_service_pb2 as _task_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageRef(_message.Message):
    __slots__ = ("channel", "ts", "purpose")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    ts: str
    purpose: str
    def __init__(self, channel: _Optional[str] = ..., ts: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "kind", "task_id", "run_id", "actor", "created_at", "attempts", "refs", "task", "run", "events", "approval_channel", "required_approvals")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    task_id: str
    run_id: str
    actor: str
    created_at: _timestamp_pb2.Timestamp
    attempts: int
    refs: _containers.RepeatedCompositeFieldContainer[MessageRef]
    task: _task_service_pb2.TaskListData
    run: _task_service_pb2.TaskRun
    events: _containers.RepeatedCompositeFieldContainer[_task_service_pb2.TaskEvent]
    approval_channel: str
    required_approvals: int
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., task_id: _Optional[str] = ..., run_id: _Optional[str] = ..., actor: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., refs: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ..., task: _Optional[_Union[_task_service_pb2.TaskListData, _Mapping]] = ..., run: _Optional[_Union[_task_service_pb2.TaskRun, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_task_service_pb2.TaskEvent, _Mapping]]] = ..., approval_channel: _Optional[str] = ..., required_approvals: _Optional[int] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("max", "lease_seconds", "consumer")
    MAX_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    max: int
    lease_seconds: int
    consumer: str
    def __init__(self, max: _Optional[int] = ..., lease_seconds: _Optional[int] = ..., consumer: _Optional[str] = ...) -> None: ...

class PullResponse(_message.Message):
    __slots__ = ("notifications",)
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("id", "consumer", "delivered", "error", "refs", "retry_after_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    consumer: str
    delivered: bool
    error: str
    refs: _containers.RepeatedCompositeFieldContainer[MessageRef]
    retry_after_seconds: int
    def __init__(self, id: _Optional[int] = ..., consumer: _Optional[str] = ..., delivered: _Optional[bool] = ..., error: _Optional[str] = ..., refs: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ..., retry_after_seconds: _Optional[int] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class SaveMessageRefsRequest(_message.Message):
    __slots__ = ("task_id", "refs")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    refs: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, task_id: _Optional[str] = ..., refs: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class SaveMessageRefsResponse(_message.Message):
    __slots__ = ("ok",)
    OK_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    def __init__(self, ok: _Optional[bool] = ...) -> None: ...

class Datasource(_message.Message):
    __slots__ = ("name", "description", "approval_channel", "required_approvals", "approvers", "default_database")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DATABASE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    approval_channel: str
    required_approvals: int
    approvers: _containers.RepeatedScalarFieldContainer[str]
    default_database: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., approval_channel: _Optional[str] = ..., required_approvals: _Optional[int] = ..., approvers: _Optional[_Iterable[str]] = ..., default_database: _Optional[str] = ...) -> None: ...

class ListDatasourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasourcesResponse(_message.Message):
    __slots__ = ("datasources",)
    DATASOURCES_FIELD_NUMBER: _ClassVar[int]
    datasources: _containers.RepeatedCompositeFieldContainer[Datasource]
    def __init__(self, datasources: _Optional[_Iterable[_Union[Datasource, _Mapping]]] = ...) -> None: ...
