"""The gRPC client of the woxqaq service, acting as a Slack user.

Every call names the acting user in `x-woxqaq-user` (the Slack user id) and carries the
bearer token when one is configured; the bot's principal must act for everyone
(`acts_for = ["*"]`, or `server.token`). TLS when a CA file or a client certificate is set.
Calls have deadlines: a listener never waits for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bot.settings import Settings
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import notification_service_pb2_grpc as npb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT_S = 10.0


class ServiceClient:
    def __init__(
        self,
        addr: str,
        token: str = "",
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ca_file: str = "",
        cert_file: str = "",
        key_file: str = "",
    ) -> None:
        self.addr = addr
        self._token = token
        self.timeout_s = timeout_s
        options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        if ca_file or cert_file:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file),
                private_key=_read(key_file),
                certificate_chain=_read(cert_file),
            )
            self.channel = grpc.secure_channel(addr, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(addr, options=options)
        self.tasks = pb_grpc.TaskServiceStub(self.channel)
        self.notifications = npb_grpc.NotificationServiceStub(self.channel)

    def _md(self, user: str = "") -> list[tuple[str, str]]:
        md: list[tuple[str, str]] = []
        if user:
            md.append(("x-woxqaq-user", user))
        if self._token:
            md.append(("authorization", f"Bearer {self._token}"))
        return md

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceClient:
        return cls(
            settings.service_addr,
            settings.service_token,
            ca_file=settings.service_ca_file,
            cert_file=settings.service_cert_file,
            key_file=settings.service_key_file,
        )

    def close(self) -> None:
        self.channel.close()

    # -- tasks, as a user ---------------------------------------------------------------

    def submit(
        self, user: str, request: pb.SubmitTaskRequest, timeout_s: float | None = None
    ) -> pb.SubmitTaskResponse:
        return self.tasks.SubmitTask(
            request, metadata=self._md(user), timeout=timeout_s or self.timeout_s
        )

    def submit_future(self, user: str, request: pb.SubmitTaskRequest) -> grpc.Future:
        return self.tasks.SubmitTask.future(
            request, metadata=self._md(user), timeout=max(self.timeout_s, 60.0)
        )

    def detail(self, user: str, task_id: str) -> pb.GetTaskDetailResponse:
        return self.tasks.GetTaskDetail(
            pb.GetTaskDetailRequest(task_id=task_id),
            metadata=self._md(user),
            timeout=self.timeout_s,
        )

    def list_tasks(
        self,
        user: str,
        role: pb.TaskRole = pb.TASK_ROLE_UNSPECIFIED,
        *,
        page_size: int = 10,
        task_id: str = "",
        status: pb.TaskStatus = pb.TASK_STATUS_UNSPECIFIED,
        current: int = 1,
    ) -> pb.ListTaskResponse:
        req = pb.ListTaskRequest(
            kind=pb.TASK_KIND_DATA_EXPORT,
            current=current,
            page_size=page_size,
            role=role,
            task_id=task_id,
            status=status,
        )
        return self.tasks.ListTaskDetail(req, metadata=self._md(user), timeout=self.timeout_s)

    def approve(self, user: str, task_id: int, comment: str = "") -> pb.ApproveResponse:
        req = pb.ApproveRequest(task_id=task_id, approver=user, comment=comment)
        return self.tasks.Approve(req, metadata=self._md(user), timeout=self.timeout_s)

    def reject(self, user: str, task_id: int, comment: str) -> pb.RejectResponse:
        req = pb.RejectRequest(task_id=task_id, approver=user, comment=comment)
        return self.tasks.Reject(req, metadata=self._md(user), timeout=self.timeout_s)

    def execute(self, user: str, task_id: int) -> pb.ExecuteResponse:
        req = pb.ExecuteRequest(task_id=task_id, executor=user)
        return self.tasks.Execute(req, metadata=self._md(user), timeout=self.timeout_s)

    def cancel(self, user: str, task_id: int, comment: str = "") -> pb.CancelResponse:
        req = pb.CancelRequest(task_id=task_id, operator=user, comment=comment)
        return self.tasks.Cancel(req, metadata=self._md(user), timeout=self.timeout_s)

    def download_url(
        self, user: str, task_id: str, run_id: str = "", expires_in: int = 0
    ) -> pb.GetDownloadUrlResponse:
        req = pb.GetDownloadUrlRequest(task_id=task_id, run_id=run_id, expires_in=expires_in)
        return self.tasks.GetDownloadUrl(req, metadata=self._md(user), timeout=self.timeout_s)

    def watch(self, user: str, task_id: str, timeout_s: float = 6 * 3600) -> Any:
        """Progress of the task's current run; cancel the returned call to stop early."""
        return self.tasks.WatchTask(
            pb.WatchTaskRequest(task_id=task_id), metadata=self._md(user), timeout=timeout_s
        )

    # -- outbox and registry, as the bot ---------------------------------------------------

    def datasources(self) -> list[npb.Datasource]:
        resp = self.notifications.ListDatasources(
            npb.ListDatasourcesRequest(), metadata=self._md(), timeout=self.timeout_s
        )
        return list(resp.datasources)

    def pull(self, consumer: str, max_items: int, lease_s: int) -> list[npb.Notification]:
        req = npb.PullRequest(max=max_items, lease_seconds=lease_s, consumer=consumer)
        resp = self.notifications.Pull(req, metadata=self._md(), timeout=self.timeout_s)
        return list(resp.notifications)

    def ack(
        self,
        notification_id: int,
        consumer: str,
        *,
        delivered: bool,
        error: str = "",
        refs: Sequence[npb.MessageRef] = (),
        retry_after_s: int = 0,
    ) -> bool:
        req = npb.AckRequest(
            id=notification_id,
            consumer=consumer,
            delivered=delivered,
            error=error,
            refs=list(refs),
            retry_after_seconds=retry_after_s,
        )
        return self.notifications.Ack(req, metadata=self._md(), timeout=self.timeout_s).ok

    def save_refs(self, task_id: str, refs: Sequence[npb.MessageRef]) -> None:
        req = npb.SaveMessageRefsRequest(task_id=task_id, refs=list(refs))
        self.notifications.SaveMessageRefs(req, metadata=self._md(), timeout=self.timeout_s)


def _read(path: str) -> bytes | None:
    """A PEM file's bytes; None when not configured (grpc then uses its defaults)."""
    return Path(path).read_bytes() if path else None
