"""woxqaq.v1.TaskService: each method translates, calls a use case and translates back."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from service.api import convert
from service.api.errors import abort_for, maps_errors
from service.api.interceptors import current_caller
from service.app.runs import Exports
from service.app.tasks import TaskManager
from service.domain.errors import InvalidRequest, PermissionDenied
from service.domain.model import TaskQuery
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def acting_user() -> str:
    """The user this call acts as, proven by its credentials (see AuthInterceptor)."""
    return current_caller().user


def named_actor(actor: str, field: str) -> str:
    """The actor a request names, which must be the caller when the caller says who they are."""
    actor = actor.strip()
    user = acting_user()
    if not actor:
        if user:
            return user
        raise InvalidRequest(f"{field} is empty: say who is acting")
    if user and user != actor:
        raise PermissionDenied(f"you act as {user!r} and may not name {field} {actor!r}")
    return actor


class TaskServicer(pb_grpc.TaskServiceServicer):
    def __init__(self, tasks: TaskManager, exports: Exports) -> None:
        self.tasks = tasks
        self.exports = exports

    @maps_errors
    def SubmitTask(
        self, request: pb.SubmitTaskRequest, context: grpc.ServicerContext
    ) -> pb.SubmitTaskResponse:
        task = self.tasks.submit(
            convert.new_task_from_pb(request), acting_user(), via=current_caller().via
        )
        # ok says whether the task passed its pre-check; when it did not, the task is
        # recorded as PRE_CHECK_FAILED and GetTaskDetail gives precheck_messages.
        return pb.SubmitTaskResponse(ok=not task.precheck_messages, task_id=str(task.id))

    @maps_errors
    def GetTaskDetail(
        self, request: pb.GetTaskDetailRequest, context: grpc.ServicerContext
    ) -> pb.GetTaskDetailResponse:
        task_id = convert.task_id_from_string(request.task_id)
        detail = self.tasks.detail(task_id, acting_user())
        return pb.GetTaskDetailResponse(
            ok=True,
            ded=convert.spec_to_pb(detail.task.spec) if detail.task.import_spec is None else None,
            task=convert.task_to_pb(detail.task),
            runs=[convert.run_to_pb(self.exports.with_live_progress(r)) for r in detail.runs],
            precheck_messages=detail.task.precheck_messages,
            events=[convert.event_to_pb(e) for e in detail.events],
            preview=convert.preview_to_pb(detail.preview),
        )

    @maps_errors
    def ListTaskDetail(
        self, request: pb.ListTaskRequest, context: grpc.ServicerContext
    ) -> pb.ListTaskResponse:
        if request.current < 0 or request.page_size < 0:
            raise InvalidRequest("current and page_size must not be negative; pages start at 1")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = self.tasks.list(
            TaskQuery(
                user=acting_user(),
                kind=convert.kind_from_pb(request.kind),
                status=convert.status_from_pb(request.status),
                datasource=request.dsn.strip(),
                role=convert.role_from_pb(request.role),
                task_id=convert.task_id_from_string(request.task_id) if request.task_id else None,
                page=request.current or 1,
                page_size=page_size,
            )
        )
        return pb.ListTaskResponse(
            ok=True,
            data=[convert.task_to_pb(t) for t in page.items],
            page_size=page.page_size,
            total=min(page.total, 2**31 - 1),
        )

    @maps_errors
    def Approve(
        self, request: pb.ApproveRequest, context: grpc.ServicerContext
    ) -> pb.ApproveResponse:
        task_id = convert.task_id_from_int(request.task_id)
        self.tasks.approve(
            task_id,
            named_actor(request.approver, "approver"),
            request.comment,
            via=current_caller().via,
        )
        return pb.ApproveResponse(ok=True)

    @maps_errors
    def Reject(self, request: pb.RejectRequest, context: grpc.ServicerContext) -> pb.RejectResponse:
        task_id = convert.task_id_from_int(request.task_id)
        self.tasks.reject(
            task_id,
            named_actor(request.approver, "approver"),
            request.comment,
            via=current_caller().via,
        )
        return pb.RejectResponse(ok=True)

    @maps_errors
    def Cancel(self, request: pb.CancelRequest, context: grpc.ServicerContext) -> pb.CancelResponse:
        task_id = convert.task_id_from_int(request.task_id)
        self.tasks.cancel(
            task_id,
            named_actor(request.operator, "operator"),
            request.comment,
            via=current_caller().via,
        )
        return pb.CancelResponse(ok=True)

    @maps_errors
    def Execute(
        self, request: pb.ExecuteRequest, context: grpc.ServicerContext
    ) -> pb.ExecuteResponse:
        task_id = convert.task_id_from_int(request.task_id)
        run_id = self.tasks.execute(
            task_id, named_actor(request.executor, "executor"), via=current_caller().via
        )
        return pb.ExecuteResponse(ok=True, run_id=str(run_id))

    @maps_errors
    def GetDownloadUrl(
        self, request: pb.GetDownloadUrlRequest, context: grpc.ServicerContext
    ) -> pb.GetDownloadUrlResponse:
        task_id = convert.task_id_from_string(request.task_id)
        run_id = convert.task_id_from_string(request.run_id, "run_id") if request.run_id else None
        if request.expires_in < 0:
            raise InvalidRequest("expires_in must not be negative; 0 means the default")
        run = self.tasks.run_for_download(task_id, run_id, acting_user())
        link = self.exports.download_link(run, request.expires_in)
        return pb.GetDownloadUrlResponse(
            url=link.url, expire_time=convert.timestamp(link.expires_at), filename=run.filename
        )

    def WatchTask(
        self, request: pb.WatchTaskRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TaskProgress]:
        try:
            task_id = convert.task_id_from_string(request.task_id)
            self.tasks.detail(task_id, acting_user())  # exists and visible to the caller
            for p in self.exports.watch(task_id, is_active=context.is_active):
                yield pb.TaskProgress(
                    task_id=str(task_id),
                    run_id=str(p.run_id) if p.run_id else "",
                    status=convert.wire(p.status),
                    rows=p.rows,
                    bytes=p.bytes,
                    message=p.message,
                )
        except Exception as exc:
            abort_for(context, exc, "WatchTask")
