"""woxqaq.v1.IdentityService: who the service thinks the caller is (`woxqaq whoami`)."""

from __future__ import annotations

import grpc

from service.api.errors import maps_errors
from service.api.interceptors import current_caller
from woxqaq.v1 import identity_service_pb2 as ipb
from woxqaq.v1 import identity_service_pb2_grpc as ipb_grpc

SERVICE_NAME = ipb.DESCRIPTOR.services_by_name["IdentityService"].full_name


class IdentityServicer(ipb_grpc.IdentityServiceServicer):
    @maps_errors
    def WhoAmI(
        self, request: ipb.WhoAmIRequest, context: grpc.ServicerContext
    ) -> ipb.WhoAmIResponse:
        caller = current_caller()
        return ipb.WhoAmIResponse(
            principal=caller.principal.name,
            method=caller.principal.how,
            user=caller.user,
            acts_for=sorted(caller.principal.acts_for),
        )
