"""Health checking, reflection, bearer tokens and message limits of the real server."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from service_support import Caller

from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import upload_service_pb2 as upload_pb


def test_health_check_reports_serving(start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service()
    stub = health_pb2_grpc.HealthStub(svc.channel)
    for name in ("", "woxqaq.v1.TaskService", "woxqaq.v1.UploadService"):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_both_services_and_their_methods(start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service()
    db = ProtoReflectionDescriptorDatabase(svc.channel)
    services = set(db.get_services())
    assert {"woxqaq.v1.TaskService", "woxqaq.v1.UploadService", "grpc.health.v1.Health"} <= services
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(db)
    task_service = pool.FindServiceByName("woxqaq.v1.TaskService")
    assert {m.name for m in task_service.methods} == {
        "GetTaskDetail",
        "ListTaskDetail",
        "SubmitTask",
        "Approve",
        "Reject",
        "Execute",
        "Cancel",
        "GetDownloadUrl",
        "WatchTask",
    }
    approve = pool.FindMessageTypeByName("woxqaq.v1.ApproveRequest")
    assert [(f.name, f.number) for f in approve.fields] == [
        ("task_id", 1),
        ("approver", 2),
        ("comment", 3),
    ]


def test_bearer_token_is_checked_on_every_task_call(start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(server={"token": "s3cret-token"})
    good = svc.as_user("zoe")
    assert good.ListTaskDetail(pb.ListTaskRequest()).ok

    for metadata, words in (
        ([("x-woxqaq-user", "zoe")], "missing credentials"),
        ([("x-woxqaq-user", "zoe"), ("authorization", "Bearer wrong")], "invalid token"),
        ([("authorization", "s3cret-token")], "invalid token"),  # no "Bearer " scheme
    ):
        caller = Caller(svc.channel, None, None)
        caller.metadata = metadata
        for call in (
            lambda: caller.ListTaskDetail(pb.ListTaskRequest()),
            lambda: caller.Approve(pb.ApproveRequest(task_id=1, approver="zoe")),
            lambda: list(caller.WatchTask(pb.WatchTaskRequest(task_id="1"))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert words in info.value.details()
            assert "s3cret" not in info.value.details()

    upload = svc.upload_stub()
    with pytest.raises(grpc.RpcError) as info:
        upload.PreSign(upload_pb.PreSignRequest(filename="a.csv"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Probes stay open: health needs no token.
    health = health_pb2_grpc.HealthStub(svc.channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_oversized_message_is_refused_and_server_keeps_serving(start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service(server={"max_message_bytes": 64 * 1024})
    big = "x" * (100 * 1024)
    with pytest.raises(grpc.RpcError) as info:
        svc.submit("zoe", sql=f"SELECT '{big}' AS a")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).ok


def test_overlong_fields_are_invalid_arguments(start_service) -> None:  # type: ignore[no-untyped-def]
    svc = start_service()
    with pytest.raises(grpc.RpcError) as info:
        svc.submit("zoe", sql="SELECT 1 AS a", reason="r" * 5000)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "export_reason" in info.value.details() and "limit" in info.value.details()
