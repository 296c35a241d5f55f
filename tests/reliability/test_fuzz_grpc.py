"""Random and boundary requests for every method of the services, over a real socket.

Every answer is OK or a status a client can act on, with a message; never INTERNAL or
UNKNOWN, never a hang, never a traceback in the service log, and the server keeps serving.
Requests are built from the message descriptors, so a field added to the proto is fuzzed
without a change here. (Proto strings are UTF-8 on the wire, so lone surrogates cannot be
sent; none of the requests has a bytes field.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import Running, shop_config

from service.config import parse_config
from service.server import Service
from woxqaq.v1 import datasource_service_pb2 as dpb
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2 as upb

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
}
LIMIT = 3 * 1024 * 1024  # server.max_message_bytes: a few ~1 MB strings go over it
CALL_TIMEOUT_S = 20

METHODS: list[MethodDescriptor] = [
    method
    for module, name in (
        (pb, "TaskService"),
        (upb, "UploadService"),
        (npb, "NotificationService"),
        (dpb, "DatasourceService"),
    )
    for method in module.DESCRIPTOR.services_by_name[name].methods
]

# -- strategies from descriptors ----------------------------------------------------------

MEGABYTE = "\u202e" + "x" * (1 << 20)
STRINGS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "1",
            "2",
            "3",
            "-1",
            " 1 ",
            "+1",
            "1.0",
            "1e3",
            "0x10",
            "\uff11",  # fullwidth digit one: isdigit() but not a decimal id
            "\u0661",  # Arabic-Indic one
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999999",
            "\x00",
            "1\x00",
            "\u202eevil",
            "shop",
            "demo",
            "alice",
            "auto",
            "SELECT 1 AS a",
            "DELETE FROM orders",
            "orders",
            "0 9 * * MON-FRI",
            "* * * * *",
            "Mars/Olympus",
            "C_APPROVALS",
            "../../etc/passwd",
            "a" * 5000,
            MEGABYTE,
        ]
    ),
    st.text(max_size=60),
)
UINT64 = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)
INT64 = st.one_of(
    st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1)
)
INT32 = st.one_of(
    st.sampled_from([0, 1, -1, 5, 100, 101, 3600, 3601, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)
SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: STRINGS,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.one_of(
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e308, float("inf"), float("nan")]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
}


def enum_values(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """Known values mostly, and any int32: proto3 enums are open on the wire."""
    known = [v.number for v in field.enum_type.values]
    return st.one_of(st.sampled_from(known), INT32)


def is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def value_for(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_for(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_values(field)
    return SCALARS[field.type]


def message_for(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Timestamp" or depth > 4:
        return st.just(cls())
    fields = {}
    for f in desc.fields:
        if is_map(f):
            entry = f.message_type.fields_by_name
            fields[f.name] = st.dictionaries(
                value_for(entry["key"], depth), value_for(entry["value"], depth), max_size=3
            )
            continue
        one = value_for(f, depth)
        if f.is_repeated:
            fields[f.name] = st.lists(one, max_size=3)
        else:
            fields[f.name] = st.one_of(st.none(), one)  # None: left unset

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for name, strategy in fields.items():
            value = draw(strategy)
            f = desc.fields_by_name[name]
            if value is None:
                continue
            if is_map(f):
                getattr(msg, name).update(value)
            elif f.is_repeated:
                target = getattr(msg, name)
                for v in value:
                    if f.type == FieldDescriptor.TYPE_MESSAGE:
                        target.add().CopyFrom(v)
                    else:
                        target.append(v)
            elif f.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return build()


USERS = st.sampled_from([None, "", "alice", "bob", "zoe", " alice ", "x" * 300, "DROP TABLE"])

# -- the server ---------------------------------------------------------------------------


class TracebackCatcher(logging.Handler):
    """Every log record with a traceback, from any logger (grpc's own included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.exc_text or record.stack_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def catcher() -> Iterator[TracebackCatcher]:
    handler = TracebackCatcher()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, catcher: TracebackCatcher
) -> Iterator[Running]:
    """One service for the module, with tasks in several states for the ids to hit."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    cfg = parse_config(shop_config(tmp, server={"max_message_bytes": LIMIT}))
    service = Service(cfg, listen="127.0.0.1:0")
    port = service.start()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.max_send_message_length", 64 << 20)],  # let oversized ones leave
    )
    grpc.channel_ready_future(channel).result(timeout=10)
    svc = Running(service, cfg, channel, f"127.0.0.1:{port}")
    svc.submit("zoe", sql="SELECT order_no FROM orders")  # 1: approving
    svc.submit("zoe", sql="DELETE FROM orders")  # 2: pre-check failed
    svc.submit("zoe", sql="SELECT 1 AS a", exector=pb.EXEC_COMMITTER)  # 3: approved, waiting
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=3, approver="alice"))
    svc.submit("zoe", sql="SELECT 2 AS b")  # 4: exported
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=4, approver="bob"))
    yield svc
    channel.close()
    service.stop(grace_s=5)


def call(svc: Running, method: MethodDescriptor, request: Message, user: str | None) -> Any:
    """The call's status code and details; streams are read to their end."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_cls = GetMessageClass(method.output_type)
    metadata = [("x-woxqaq-user", user)] if user is not None else []
    kw: dict[str, Any] = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": response_cls.FromString,
    }
    try:
        if method.server_streaming:
            stream = svc.channel.unary_stream(path, **kw)
            list(stream(request, metadata=metadata, timeout=CALL_TIMEOUT_S))
        else:
            svc.channel.unary_unary(path, **kw)(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def still_serving(svc: Running) -> None:
    assert svc.as_user("alice").ListTaskDetail(pb.ListTaskRequest()).ok


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_request_gets_an_actionable_status(
    server: Running, catcher: TracebackCatcher, method: MethodDescriptor, data: st.DataObject
) -> None:
    request = data.draw(message_for(method.input_type), label="request")
    user = data.draw(USERS, label="user")
    code, details = call(server, method, request, user)
    assert code in ALLOWED, f"{code}: {details}"
    if code is not grpc.StatusCode.OK:
        assert details.strip(), f"{code} without a message"
    assert not catcher.records, [r.getMessage() for r in catcher.records]
    still_serving(server)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_a_request_over_the_size_limit_is_resource_exhausted(
    server: Running, catcher: TracebackCatcher, method: MethodDescriptor
) -> None:
    # An unknown field survives parsing in proto3, so even an empty request can be made big.
    request = GetMessageClass(method.input_type)()
    padding = b"\xfa\x3f" + _varint(LIMIT + 1) + b"x" * (LIMIT + 1)  # field 1023, bytes
    request.MergeFromString(padding)
    code, details = call(server, method, request, "alice")
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
    assert not catcher.records
    still_serving(server)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_bytes_that_are_not_the_message_are_invalid_arguments(
    server: Running, catcher: TracebackCatcher, method: MethodDescriptor
) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    garbage = [
        b"\x0a\x02\xff\xfe",  # field 1 as a string that is not UTF-8
        b"\x0a\x05\xed\xa0\x80ab",  # a lone surrogate, UTF-8 encoded
        b"\xff\xff\xff\xff",  # not a protobuf at all
        b"\x0a\x80",  # truncated length
    ]
    for raw in garbage:
        kw: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}
        try:
            if method.server_streaming:
                list(svc_stream(server, path, kw)(raw, timeout=CALL_TIMEOUT_S))
            else:
                server.channel.unary_unary(path, **kw)(raw, timeout=CALL_TIMEOUT_S)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
        assert code in ALLOWED, f"{raw!r}: {code}: {details}"
    assert not catcher.records, [r.getMessage() for r in catcher.records]
    still_serving(server)


def svc_stream(server: Running, path: str, kw: dict[str, Any]) -> Any:
    return server.channel.unary_stream(path, **kw)
