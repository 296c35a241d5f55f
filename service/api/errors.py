"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc

from service.domain import errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

CODES: list[tuple[type[errors.WoxqaqError], grpc.StatusCode]] = [
    (errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def status_of(exc: errors.WoxqaqError) -> grpc.StatusCode:
    for cls, code in CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def abort_for(context: grpc.ServicerContext, exc: Exception, where: str) -> NoReturn:
    """Abort the call for `exc`: a domain error with its code and message; anything else is
    a bug, logged with its traceback and answered INTERNAL with a reference to find it."""
    if isinstance(exc, errors.WoxqaqError):
        context.abort(status_of(exc), str(exc))
    ref = uuid.uuid4().hex[:12]
    log.error("unexpected error in %s (ref %s)", where, ref, exc_info=exc)
    context.abort(
        grpc.StatusCode.INTERNAL, f"internal error (reference {ref}); try again or report it"
    )
    raise AssertionError("context.abort returned")  # it raises; this keeps type checkers honest


def maps_errors(method: F) -> F:
    """Servicer method decorator: errors become statuses through abort_for."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            abort_for(context, exc, method.__name__)

    return wrapper  # type: ignore[return-value]
