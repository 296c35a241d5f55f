"""Slack listeners: each acks first, then works. Shared helpers for telling a person things."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


def tell(
    client: WebClient,
    user_id: str,
    text: str,
    *,
    respond: Respond | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """An ephemeral reply where Slack gave a response_url, else a direct message."""
    try:
        if respond is not None and respond.response_url:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            return
        client.chat_postMessage(channel=user_id, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not tell the user: %s", exc.response.get("error", "unknown"))
    except Exception:
        log.exception("could not tell the user")


def task_id_of(value: str) -> int | None:
    """The task id a button carries; None when it is not one (an edited payload)."""
    head = value.split(":", 1)[0].strip()
    if not head.isdigit() or not head.isascii() or len(head) > 20:
        return None
    task_id = int(head)
    return task_id if task_id < 2**64 else None  # a larger one cannot go on the wire


def guarded(where: str, fn: Callable[[], None]) -> None:
    """Run work after the ack; an unexpected failure is logged, never raised into Bolt."""
    try:
        fn()
    except Exception:
        log.exception("%s failed", where)
