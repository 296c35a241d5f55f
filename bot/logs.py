"""The bot's log lines: readable text, or one JSON object a line for log shippers
(WOXQAQ_LOG_FORMAT=json), with the task and run a line is about. The bot is a client of
the service and keeps its own few lines of set-up rather than import the service's."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal

CONTEXT_KEYS = ("task_id", "run_id", "notification", "kind")


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k in CONTEXT_KEYS if (v := getattr(record, k, None)) not in ("", None)}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(fmt: Literal["text", "json"] = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("WOXQAQ_LOG_LEVEL", "INFO"))
