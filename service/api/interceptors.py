"""Server interceptors: call metrics, log context, who calls (token, JWT, client
certificate), unreadable requests."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError

from service.api.errors import status_of
from service.auth import EVERYONE, Authenticator, Caller
from service.domain.errors import PermissionDenied, WoxqaqError
from service.logs import add_log_context, log_context
from service.metrics import Metrics

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
        add_log_context(principal=principal.name, user=caller.user)
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


Scope = Callable[[grpc.ServicerContext], AbstractContextManager[None]]


def _around(handler: grpc.RpcMethodHandler, scope: Scope) -> grpc.RpcMethodHandler:
    """`handler` with each call run inside `scope(context)`; a streaming response's scope
    lasts until its last message (or the client going away)."""

    def unary(call: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            with scope(context):
                return call(request, context)

        return run

    def streaming(call: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with scope(context):
                yield from call(request, context)

        return run

    kinds = {
        "unary_unary": (unary, grpc.unary_unary_rpc_method_handler),
        "unary_stream": (streaming, grpc.unary_stream_rpc_method_handler),
        "stream_unary": (unary, grpc.stream_unary_rpc_method_handler),
        "stream_stream": (streaming, grpc.stream_stream_rpc_method_handler),
    }
    for attr, (wrap, build) in kinds.items():
        call = getattr(handler, attr)
        if call is not None:
            return build(  # type: ignore[operator]
                wrap(call),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class _ScopedInterceptor(grpc.ServerInterceptor):
    """Runs each call of a method this process defines inside `scope`."""

    def scope(self, method: str, details: grpc.HandlerCallDetails) -> Scope:
        raise NotImplementedError

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        # A method name is the caller's text: one the protobuf descriptors do not define
        # is "unknown", or each made-up name would be a new metric series or log value.
        method = details.method if _defined(details.method) else "unknown"
        return _around(handler, self.scope(method, details))


class MetricsInterceptor(_ScopedInterceptor):
    """Counts every call by method and status code, and times it. Outermost, so refusals
    of the interceptors inside it (a bad token, an unreadable request) are counted too."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def scope(self, method: str, details: grpc.HandlerCallDetails) -> Scope:
        handled = self._metrics.rpcs
        latency = self._metrics.rpc_latency.labels(method)

        @contextmanager
        def observed(context: grpc.ServicerContext) -> Iterator[None]:
            started, failed = time.perf_counter(), True
            try:
                yield
                failed = False
            finally:
                latency.observe(time.perf_counter() - started)
                handled.labels(method, _code_of(context, failed).name).inc()

        return observed


class LogContextInterceptor(_ScopedInterceptor):
    """Every line logged while a call is handled names its method, and once AuthInterceptor
    (inside this one) has proved who calls, its principal and the user it acts as; the
    scope ends with the call, so nothing carries over to the next call on the thread."""

    def scope(self, method: str, details: grpc.HandlerCallDetails) -> Scope:
        return lambda _context: log_context(method=method)


def _defined(method: str) -> bool:
    """Whether `/package.Service/Method` is a method of a service this process knows."""
    parts = method.split("/")
    if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
        return False
    try:
        descriptor_pool.Default().FindMethodByName(f"{parts[1]}.{parts[2]}")
    except KeyError:
        return False
    return True


def _code_of(context: grpc.ServicerContext, failed: bool) -> grpc.StatusCode:
    """The status the call ended with: what the servicer set or aborted with; a servicer
    that raised without one ends UNKNOWN (grpc's answer to an uncaught exception)."""
    code = context.code()  # type: ignore[attr-defined]
    if isinstance(code, grpc.StatusCode):
        return code
    if not failed:
        return grpc.StatusCode.OK
    return grpc.StatusCode.UNKNOWN if context.is_active() else grpc.StatusCode.CANCELLED
