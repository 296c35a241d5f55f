"""The one place where gRPC failures become a sentence for a person."""

from __future__ import annotations

import grpc

_LEADS = {
    grpc.StatusCode.INVALID_ARGUMENT: "That request isn't valid",
    grpc.StatusCode.NOT_FOUND: "I can't find that",
    grpc.StatusCode.PERMISSION_DENIED: "You can't do that",
    grpc.StatusCode.FAILED_PRECONDITION: "That can't be done right now",
    grpc.StatusCode.ALREADY_EXISTS: "That already exists",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "The export service is busy",
}
_UNREACHABLE = (
    "The export service can't be reached right now; please try again in a minute. "
    "If it keeps happening, tell the team that runs woxqaq."
)


def describe(exc: BaseException) -> str:
    """What happened and what to do, for a Slack message; never a stack trace."""
    if not isinstance(exc, grpc.RpcError):
        return "Something went wrong on my side; please try again, and report it if it persists."
    code = exc.code() if hasattr(exc, "code") else None
    detail = (exc.details() if hasattr(exc, "details") else "") or ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return _UNREACHABLE
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return "The bot isn't allowed to use the export service (its token is wrong or missing)."
    if code is grpc.StatusCode.INTERNAL or code not in _LEADS:
        return f"The export service failed: {detail or 'no details'}. Please try again."
    lead = _LEADS[code]
    return f"{lead}: {detail}" if detail else f"{lead}."


def status_of(exc: BaseException) -> grpc.StatusCode | None:
    return exc.code() if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") else None
