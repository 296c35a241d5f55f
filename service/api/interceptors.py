"""Server interceptors: the bearer token check."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

# Health checks and reflection stay open: probes and grpcurl carry no token.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _deny(message: str) -> grpc.RpcMethodHandler:
    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Every call carries `authorization: Bearer <token>` when the service has a token."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if details.method.startswith(OPEN_PREFIXES):
            return continuation(details)
        given = dict(details.invocation_metadata or ()).get("authorization")
        if given is None:
            return _deny("missing credentials: send metadata 'authorization: Bearer <token>'")
        given_bytes = given.encode() if isinstance(given, str) else given
        if not hmac.compare_digest(given_bytes, self._expected):
            return _deny("invalid token in 'authorization' metadata")
        return continuation(details)
