"""Helpers for driving the real task service in tests: callers acting as a user, configs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from service.config import Config
from service.demo import ensure_demo_database
from service.server import Service
from woxqaq.v1 import datasource_service_pb2_grpc as dpb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc
from woxqaq.v1 import upload_service_pb2_grpc as upload_grpc

APPROVERS = ["alice", "bob", "carol", "dave", "erin"]


class Caller:
    """A stub (TaskService unless told) that acts as one user (x-woxqaq-user) with an
    optional token."""

    def __init__(
        self,
        channel: grpc.Channel,
        user: str | None,
        token: str | None,
        stub: Callable[[grpc.Channel], Any] = pb_grpc.TaskServiceStub,
    ) -> None:
        self._stub = stub(channel)
        self.metadata: list[tuple[str, str]] = []
        if user is not None:
            self.metadata.append(("x-woxqaq-user", user))
        if token is not None:
            self.metadata.append(("authorization", f"Bearer {token}"))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = getattr(self._stub, name)
        return lambda request, **kw: rpc(request, metadata=self.metadata, timeout=30, **kw)


@dataclass
class Running:
    service: Service
    config: Config
    channel: grpc.Channel
    addr: str
    token: str | None = None

    def as_user(self, user: str | None) -> Caller:
        return Caller(self.channel, user, self.token)

    def datasources_as(self, user: str | None) -> Caller:
        """DatasourceService as `user`."""
        return Caller(self.channel, user, self.token, dpb_grpc.DatasourceServiceStub)

    def upload_stub(self) -> upload_grpc.UploadServiceStub:
        return upload_grpc.UploadServiceStub(self.channel)

    def submit(self, user: str, **ded_fields: Any) -> pb.SubmitTaskResponse:
        """Submit an export of the shop datasource; `sql=` or `tables=`; other keys go to ded."""
        sql = ded_fields.pop("sql", None)
        tables = ded_fields.pop("tables", None)
        dsn = ded_fields.pop("dsn", "shop")
        schedule = ded_fields.pop("schedule", None)
        ded = pb.DataExportDetail(
            export_reason=ded_fields.pop("reason", "monthly report"), **ded_fields
        )
        if sql is not None:
            ded.ebs.statement = sql
        for t in tables or ():
            ded.eatt.option.add(**t)
        req = pb.SubmitTaskRequest(
            kind=pb.TASK_KIND_DATA_EXPORT, dsn=dsn, ded=ded, schedule=schedule
        )
        return self.as_user(user).SubmitTask(req)

    def detail(self, task_id: str, user: str = "auditor") -> pb.GetTaskDetailResponse:
        return self.as_user(user).GetTaskDetail(pb.GetTaskDetailRequest(task_id=task_id))

    def wait_for_status(
        self, task_id: str, statuses: set[int], timeout: float = 30
    ) -> pb.GetTaskDetailResponse:
        """The task's detail once its status is one of `statuses`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            detail = self.detail(task_id)
            if detail.task.status in statuses:
                return detail
            assert time.monotonic() < deadline, f"task {task_id} stuck in {detail.task.status}"
            time.sleep(0.05)


def runs(svc: Running, task_id: str) -> list[pb.TaskRun]:
    return list(svc.detail(task_id).runs)


def settled(svc: Running, task_id: str, count: int, timeout: float = 30) -> list[pb.TaskRun]:
    """The task's runs once there are `count` and none is still executing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = runs(svc, task_id)
        if len(got) >= count and all(r.status != pb.TASK_STATUS_EXECUTING for r in got):
            return got
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not settle with {count} runs: {runs(svc, task_id)}")


def shop_config(tmp: Path, store_url: str = "", **overrides: Any) -> dict[str, Any]:
    shop = tmp / "shop.db"
    ensure_demo_database(shop)
    datasource = {
        "url": f"sqlite:///{shop}",
        "approvers": APPROVERS,
        "approval_channel": "C_APPROVALS",
        "required_approvals": 1,
    }
    datasource |= overrides.pop("shop", {})
    data: dict[str, Any] = {
        "server": {"data_dir": str(tmp / "data")},
        "storage": {"local": {"http_listen": "127.0.0.1:0"}},
        "task_store": {"url": store_url},
        "datasources": {"shop": datasource},
    }
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    return data
