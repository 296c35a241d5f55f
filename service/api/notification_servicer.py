"""woxqaq.v1.NotificationService: the outbox and the datasource registry for chat front ends."""

from __future__ import annotations

import grpc

from service.api import convert
from service.api.errors import maps_errors
from service.app.outbox import Outbox, Pending
from service.domain.model import MessageRef
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import notification_service_pb2_grpc as npb_grpc

SERVICE_NAME = npb.DESCRIPTOR.services_by_name["NotificationService"].full_name


def _ref_from_pb(ref: npb.MessageRef) -> MessageRef:
    return MessageRef(channel=ref.channel.strip(), ts=ref.ts.strip(), purpose=ref.purpose.strip())


def _notification_to_pb(p: Pending) -> npb.Notification:
    return npb.Notification(
        id=p.id,
        kind=p.kind,
        task_id=str(p.task_id),
        run_id=str(p.run_id) if p.run_id else "",
        actor=p.actor,
        created_at=convert.timestamp(p.created_at),
        attempts=p.attempts,
        refs=[npb.MessageRef(channel=r.channel, ts=r.ts, purpose=r.purpose) for r in p.refs],
        task=convert.task_to_pb(p.task),
        run=convert.run_to_pb(p.run) if p.run else None,
        events=[convert.event_to_pb(e) for e in p.events],
        approval_channel=p.approval_channel,
        required_approvals=p.required_approvals,
    )


class NotificationServicer(npb_grpc.NotificationServiceServicer):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @maps_errors
    def Pull(self, request: npb.PullRequest, context: grpc.ServicerContext) -> npb.PullResponse:
        leased = self.outbox.pull(request.consumer, request.max, request.lease_seconds)
        return npb.PullResponse(notifications=[_notification_to_pb(p) for p in leased])

    @maps_errors
    def Ack(self, request: npb.AckRequest, context: grpc.ServicerContext) -> npb.AckResponse:
        ok = self.outbox.ack(
            request.id,
            request.consumer,
            delivered=request.delivered,
            error=request.error,
            refs=[_ref_from_pb(r) for r in request.refs],
            retry_after_s=max(request.retry_after_seconds, 0),
        )
        return npb.AckResponse(ok=ok)

    @maps_errors
    def SaveMessageRefs(
        self, request: npb.SaveMessageRefsRequest, context: grpc.ServicerContext
    ) -> npb.SaveMessageRefsResponse:
        task_id = convert.task_id_from_string(request.task_id)
        self.outbox.save_refs(task_id, [_ref_from_pb(r) for r in request.refs])
        return npb.SaveMessageRefsResponse(ok=True)

    @maps_errors
    def ListDatasources(
        self, request: npb.ListDatasourcesRequest, context: grpc.ServicerContext
    ) -> npb.ListDatasourcesResponse:
        return npb.ListDatasourcesResponse(
            datasources=[
                npb.Datasource(
                    name=d.name,
                    description=d.description,
                    approval_channel=d.approval_channel,
                    required_approvals=d.required_approvals,
                    approvers=d.approvers,
                    default_database=d.default_database,
                )
                for d in self.outbox.datasources()
            ]
        )


def register(server: grpc.Server, outbox: Outbox) -> None:
    """Add the NotificationService to `server` (one call in the service's server builder)."""
    npb_grpc.add_NotificationServiceServicer_to_server(NotificationServicer(outbox), server)
