"""Domain errors: each says what happened and what to do. api/errors.py maps them to gRPC codes."""

from __future__ import annotations


class WoxqaqError(Exception):
    """Base class; the message is shown to the user as it is, so it must never carry a secret."""


class InvalidRequest(WoxqaqError):
    """The request is malformed (an unknown enum, a missing field, a bad id)."""


class NotFound(WoxqaqError):
    """A task, run or datasource that does not exist (or that the user may not see)."""


class Unauthenticated(WoxqaqError):
    """The caller proved no identity: a missing, wrong, expired or foreign credential."""


class PermissionDenied(WoxqaqError):
    """The actor may not do this: not an approver, self-approval, not the executor."""


class WrongState(WoxqaqError):
    """The task is not in a state that allows this (approving twice, executing before approval)."""


class Unavailable(WoxqaqError):
    """A dependency (datasource, object store) could not be reached; trying again may work."""
