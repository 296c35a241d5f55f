"""Server interceptors: who calls (token, JWT, client certificate), unreadable requests."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from service.api.errors import status_of
from service.auth import EVERYONE, Authenticator, Caller
from service.domain.errors import PermissionDenied, WoxqaqError

log = logging.getLogger(__name__)

# Health checks and reflection stay open: probes and grpcurl carry no token.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


USER_HEADER = "x-woxqaq-user"
# Only a principal acting for everyone reads the outbox (every task's news) and says where
# its messages went: the chat front end, not a person.
FRONT_END_PREFIXES = ("/woxqaq.v1.NotificationService/",)

READ_PREFIXES = ("Get", "List", "Watch", "Pull", "WhoAmI")

_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("woxqaq_caller")


def current_caller() -> Caller:
    """The caller of the call being served (set by AuthInterceptor before the servicer runs)."""
    return _CALLER.get()


class AuthInterceptor(grpc.ServerInterceptor):
    """Every call proves its principal (token, JWT or client certificate) and acts only as
    a user that principal may act as; the servicers read the result with current_caller()."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def _caller(self, method: str, context: grpc.ServicerContext) -> Caller:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        names = context.auth_context().get("x509_common_name") or [b""]
        certificate_name = names[0].decode(errors="replace")
        try:
            principal = self._auth.authenticate(metadata.get("authorization"), certificate_name)
            caller = Caller(principal, principal.acting_user(metadata.get(USER_HEADER, "").strip()))
            if method.startswith(FRONT_END_PREFIXES) and EVERYONE not in principal.acts_for:
                raise PermissionDenied(
                    f"{principal.name!r} may not use {method.split('/')[1]}: it serves chat "
                    'front ends, whose principal has acts_for = ["*"]'
                )
        except WoxqaqError as exc:
            log.info("call %s refused: %s", method, exc)
            context.abort(status_of(exc), str(exc))
        _CALLER.set(caller)
        if not method.rpartition("/")[2].startswith(READ_PREFIXES):  # decisions, in the log
            log.info(
                "call %s",
                method.rpartition("/")[2],
                extra={"user": caller.user, "principal": principal.name},
            )
        return caller

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        method = details.method
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def unary_call(request: Any, context: grpc.ServicerContext) -> Any:
                self._caller(method, context)
                return unary(request, context)

            return handler._replace(unary_unary=unary_call)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def stream_call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                self._caller(method, context)
                yield from stream(request, context)

            return handler._replace(unary_stream=stream_call)
        # No client-streaming method exists; should one come, it must not pass unchecked.
        raise NotImplementedError(f"{method}: client streaming has no identity check yet")


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
