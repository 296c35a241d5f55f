from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasourceQuery(_message.Message):
    __slots__ = ("check_reachable",)
    CHECK_REACHABLE_FIELD_NUMBER: _ClassVar[int]
    check_reachable: bool
    def __init__(self, check_reachable: _Optional[bool] = ...) -> None: ...

class DatasourceInfo(_message.Message):
    __slots__ = ("name", "dialect", "approvers", "approval_channel", "required_approvals", "description", "default_database", "reachable_checked", "reachable", "unreachable_reason", "audit_findings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIALECT_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DATABASE_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_CHECKED_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FINDINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dialect: str
    approvers: _containers.RepeatedScalarFieldContainer[str]
    approval_channel: str
    required_approvals: int
    description: str
    default_database: str
    reachable_checked: bool
    reachable: bool
    unreachable_reason: str
    audit_findings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., dialect: _Optional[str] = ..., approvers: _Optional[_Iterable[str]] = ..., approval_channel: _Optional[str] = ..., required_approvals: _Optional[int] = ..., description: _Optional[str] = ..., default_database: _Optional[str] = ..., reachable_checked: _Optional[bool] = ..., reachable: _Optional[bool] = ..., unreachable_reason: _Optional[str] = ..., audit_findings: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasourceList(_message.Message):
    __slots__ = ("datasources",)
    DATASOURCES_FIELD_NUMBER: _ClassVar[int]
    datasources: _containers.RepeatedCompositeFieldContainer[DatasourceInfo]
    def __init__(self, datasources: _Optional[_Iterable[_Union[DatasourceInfo, _Mapping]]] = ...) -> None: ...

class TableQuery(_message.Message):
    __slots__ = ("dsn", "database")
    DSN_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    dsn: str
    database: str
    def __init__(self, dsn: _Optional[str] = ..., database: _Optional[str] = ...) -> None: ...

class TableInfo(_message.Message):
    __slots__ = ("name", "columns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class TableList(_message.Message):
    __slots__ = ("database", "tables")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    database: str
    tables: _containers.RepeatedCompositeFieldContainer[TableInfo]
    def __init__(self, database: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[TableInfo, _Mapping]]] = ...) -> None: ...
