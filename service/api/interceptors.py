"""Server interceptors: the bearer token check, unreadable requests."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

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


class _Unreadable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class UnreadableRequestInterceptor(grpc.ServerInterceptor):
    """Bytes that are not the request message (a string that is not UTF-8, a truncated
    field) are the client's mistake: INVALID_ARGUMENT, where grpc would answer INTERNAL and
    log a traceback."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def deserialize(raw: bytes) -> Any:
            try:
                return parse(raw)
            except DecodeError as exc:
                return _Unreadable(str(exc))

        def refuse(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request could not be read ({request.reason}): send the method's "
                "request message, with strings in UTF-8",
            )

        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def unary_call(request: Any, context: grpc.ServicerContext) -> Any:
                if isinstance(request, _Unreadable):
                    refuse(request, context)
                return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_call, deserialize, handler.response_serializer
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def stream_call(request: Any, context: grpc.ServicerContext) -> Any:
                if isinstance(request, _Unreadable):
                    refuse(request, context)
                return stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                stream_call, deserialize, handler.response_serializer
            )
        return handler
