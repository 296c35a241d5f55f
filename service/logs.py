"""Logging set-up: one line per record, task and run ids when a record carries them."""

from __future__ import annotations

import logging
import os
import sys

_CONTEXT_KEYS = ("task_id", "run_id", "status", "error", "user", "principal")


class _ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{k}={getattr(record, k)}"
            for k in _CONTEXT_KEYS
            if getattr(record, k, "") not in ("", None)
        )
        return f"{line} {context}" if context else line


def setup_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("WOXQAQ_LOG_LEVEL", "INFO"))
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
