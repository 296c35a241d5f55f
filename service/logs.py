"""Logging set-up: one line per record, with the task, run and principal when known.

`log.format = "text"` (the default) reads well in a terminal; `"json"` writes one JSON
object a line for log shippers (Loki, Elasticsearch, CloudWatch), each with `task_id`,
`run_id` and `principal` when the record or the work it happens in knows them.

Context comes from two places: `extra={"task_id": …}` on a record, and `log_context(…)`
around a unit of work (a gRPC call binds its method and principal, an export run its task
and run), so a line logged deep inside the export engine still says which run it is about.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

CONTEXT_KEYS = ("task_id", "run_id", "principal", "user", "method", "status", "error")

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "woxqaq_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged inside the block (in this thread or task)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def add_log_context(**fields: Any) -> None:
    """Add `fields` to the context of the `log_context` block being run (a gRPC call's,
    once its caller is known); the block's end takes them away again."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context: its own `extra` first, then the work it happens in."""
    bound = _context.get()
    out = {}
    for key in CONTEXT_KEYS:
        value = getattr(record, key, None)
        if value in ("", None):
            value = bound.get(key)
        if value not in ("", None):
            out[key] = value
    return out


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        return f"{line} {context}" if context else line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, context, and
    the traceback as one string when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(fmt: Literal["text", "json"] = "text") -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def setup_logging(level: str | None = None, fmt: Literal["text", "json"] = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("WOXQAQ_LOG_LEVEL", "INFO"))
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
