"""Block Kit building blocks that respect Slack's limits whatever the input's length."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from woxqaq.v1 import task_service_pb2 as pb

Block = dict[str, Any]

# Slack's limits (SLACK-LIMITS.md): each builder clips to them.
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
CONTEXT_TEXT = 2000
OPTION_TEXT = 75
MAX_OPTIONS = 100
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
FALLBACK_TEXT = 3000  # notifications show this; keep it short
ERROR_TEXT = 1500

# action_ids the listeners match on
APPROVE = "approve_task"
REJECT = "reject_task"
SHOW_SQL = "show_sql"
EXECUTE = "execute_task"
CANCEL = "cancel_task"
STOP = "stop_run"  # cancels a task while its export runs
STOP = "stop_run"  # cancels a task while its export runs
STOP = "stop_run"  # cancels a task while its export runs
RENEW_LINK = "renew_link"
DOWNLOAD = "download_link"
EXPORT_MODE = "export_mode"
NEW_EXPORT = "new_export"
REFRESH_HOME = "refresh_home"

STATUS_LABELS: dict[int, str] = {
    pb.TASK_STATUS_NOT_START: "not started",
    pb.TASK_STATUS_PRE_CHECK: "pre-checking",
    pb.TASK_STATUS_PRE_CHECK_SUCCESS: "pre-check passed",
    pb.TASK_STATUS_PRE_CHECK_FAILED: "pre-check failed",
    pb.TASK_STATUS_APPROVING: "waiting for approval",
    pb.TASK_STATUS_APPROVED: "approved",
    pb.TASK_STATUS_NOT_APPROVED: "rejected",
    pb.TASK_STATUS_EXECUTING: "exporting",
    pb.TASK_STATUS_EXECUTE_SUCCESS: "done",
    pb.TASK_STATUS_EXECUTE_FAILED: "failed",
    pb.TASK_STATUS_CANCELED: "canceled",
}
STATUS_EMOJI: dict[int, str] = {
    pb.TASK_STATUS_PRE_CHECK_FAILED: ":warning:",
    pb.TASK_STATUS_APPROVING: ":hourglass_flowing_sand:",
    pb.TASK_STATUS_APPROVED: ":white_check_mark:",
    pb.TASK_STATUS_NOT_APPROVED: ":x:",
    pb.TASK_STATUS_EXECUTING: ":arrows_counterclockwise:",
    pb.TASK_STATUS_EXECUTE_SUCCESS: ":package:",
    pb.TASK_STATUS_EXECUTE_FAILED: ":boom:",
    pb.TASK_STATUS_CANCELED: ":no_entry_sign:",
}
EXECUTOR_LABELS: dict[int, str] = {
    pb.EXEC_AUTO: "automatically after approval",
    pb.EXEC_COMMITTER: "by the requester",
    pb.EXEC_APPROVER: "by an approver",
    pb.EXEC_UNSPECIFIED: "automatically after approval",
}
FORMAT_LABELS: dict[int, str] = {pb.EXPORT_TYPE_CSV: "CSV", pb.EXPORT_TYPE_EXCEL: "Excel"}
ENCODING_LABELS: dict[int, str] = {
    pb.ENCODING_UTF8: "UTF-8",
    pb.ENCODING_UTF8_BOM: "UTF-8 with BOM",
    pb.ENCODING_GBK: "GBK",
}
CONTENT_LABELS: dict[int, str] = {
    pb.EXPORT_CONTENT_DATA: "data",
    pb.EXPORT_CONTENT_STRUCT: "structure",
    pb.EXPORT_CONTENT_ALL: "structure and data",
}


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn control characters as entities, so user input cannot mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


VIA_MARKER = re.compile(r"^\[via [^\]]*\] ?")


def own_words(comment: str) -> str:
    """A person's comment without the service's "[via CLIENT] " marker (the client that
    acted for them, which in Slack is this bot)."""
    return VIA_MARKER.sub("", comment, count=1)


def clip_escaped(text: str, limit: int) -> tuple[str, bool]:
    """`text` escaped and cut to `limit`, never inside an entity; True when it was cut."""
    out = escape(text)
    if len(out) <= limit:
        return out, False
    cut = out[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…", True


def code_block(text: str, limit: int = SECTION_TEXT) -> tuple[str, bool]:
    """A ``` block that fits `limit` characters; True when the text had to be cut."""
    body, cut = clip_escaped(text.replace("```", "ʼʼʼ").strip("\n"), limit - 8)
    return f"```\n{body}\n```", cut


def plain(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_TEXT)}


def section(text: str, *, accessory: dict[str, Any] | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory:
        block["accessory"] = accessory
    return block


def fields(*pairs: tuple[str, str]) -> Block:
    return {
        "type": "section",
        "fields": [mrkdwn(f"*{k}*\n{v}", FIELD_TEXT) for k, v in pairs[:10]],
    }


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t, CONTEXT_TEXT) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


CONFIRM_STOP = {  # the question a Stop button asks first
    "title": plain("Stop the export?", 100),
    "text": mrkdwn("The query is stopped on the database and no file is kept."),
    "confirm": plain("Stop it", 30),
    "deny": plain("Let it run", 30),
    "style": "danger",
}


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    el: dict[str, Any] = {
        "type": "button",
        "text": plain(text, BUTTON_TEXT),
        "action_id": action_id,
    }
    if value:
        el["value"] = value[:BUTTON_VALUE]
    if style:
        el["style"] = style
    if url:
        el["url"] = url
    if confirm:
        el["confirm"] = confirm
    return el


def actions(block_id: str, *elements: dict[str, Any]) -> Block:
    return {"type": "actions", "block_id": block_id[:255], "elements": list(elements[:25])}


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_TEXT), "value": value[:150]}


def user(user_id: str) -> str:
    """A mention for a Slack user id; anything that is not an id is shown escaped."""
    if user_id and user_id.replace("_", "").isalnum() and len(user_id) <= 40:
        return f"<@{user_id}>"
    return escape(user_id or "someone")


def channel(channel_id: str) -> str:
    if channel_id and channel_id.isalnum() and len(channel_id) <= 40:
        return f"<#{channel_id}>"
    return escape(channel_id)


def as_datetime(ts: Timestamp | None) -> datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.fromtimestamp(ts.seconds, UTC)


def when(ts: Timestamp | datetime | None) -> str:
    """A date Slack shows in the reader's own time zone, with a UTC fallback."""
    moment = ts if isinstance(ts, datetime) else as_datetime(ts)
    if moment is None:
        return "—"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def status_label(status: int) -> str:
    emoji = STATUS_EMOJI.get(status, "")
    label = STATUS_LABELS.get(status, "unknown")
    return f"{emoji} {label}".strip()


def task_title(task: pb.TaskListData) -> str:
    name = f" {task.dsn}" if task.dsn else ""
    return f"Export #{task.id} from{name}" if name else f"Export #{task.id}"


def message(text: str, blocks: list[Block]) -> dict[str, Any]:
    """A chat message: fallback text (notifications, screen readers) and at most 50 blocks."""
    return {"text": clip(text, FALLBACK_TEXT), "blocks": blocks[:MESSAGE_BLOCKS]}
