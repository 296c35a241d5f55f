"""The approval request in the datasource's channel, and the modals it opens."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.blocks import generation, imports
from bot.blocks import task as t
from bot.blocks.common import (
    APPROVE,
    REJECT,
    SHOW_SQL,
    Block,
    actions,
    button,
    clip,
    clip_escaped,
    context,
    escape,
    fields,
    header,
    message,
    own_words,
    plain,
    section,
    status_label,
    user,
    when,
)
from woxqaq.v1 import task_service_pb2 as pb

REJECT_CALLBACK = "reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason_input"
MAX_SQL_VIEW_CHARS = 180_000  # a view payload is at most 250 kB, escaping included
SQL_CHUNK = 2900

DECIDED = {
    pb.TASK_STATUS_APPROVED,
    pb.TASK_STATUS_EXECUTING,
    pb.TASK_STATUS_EXECUTE_SUCCESS,
    pb.TASK_STATUS_EXECUTE_FAILED,
}


def approval_message(
    task: pb.TaskListData,
    events: Sequence[pb.TaskEvent],
    required_approvals: int,
    preview: pb.TaskPreview | None = None,
) -> dict[str, Any]:
    ded = task.ded
    kind = imports.kind_of(task)
    sql_cut = False
    if generation.is_generate(task):
        blocks: list[Block] = [
            header(f"Test-data request #{task.id}"),
            section(
                f"{user(task.submitter)} asks to write generated rows into *{escape(task.dsn)}*"
            ),
            *generation.generate_summary(task, preview),
            context(f"Approvals needed: {required_approvals or 1}"),
            section(f"*Why*\n{generation.generate_reason(task)}"),
        ]
    elif imports.is_import(task):
        blocks = [
            header(f"Import request #{task.id}"),
            section(f"{user(task.submitter)} asks to write rows into *{escape(task.dsn)}*"),
            *imports.import_summary(task, preview),
            context(f"Approvals needed: {required_approvals or 1}"),
            section(f"*Why*\n{imports.import_reason(task)}"),
        ]
    else:
        blocks = [
            header(f"Export request #{task.id}"),
            section(
                f"{user(task.submitter)} asks to export from *{escape(task.dsn)}*"
                + (f", database `{escape(task.database)}`" if task.database else "")
            ),
            fields(
                ("Format", t.format_line(ded)),
                ("Runs", t.executor_line(ded)),
                ("Schedule", t.schedule_line(task)),
                ("Approvals needed", str(required_approvals or 1)),
            ),
        ]
        if task.schedule.trigger == pb.TRIGGER_KIND_CRON and task.status in (
            pb.TASK_STATUS_APPROVING,
            pb.TASK_STATUS_APPROVED,
        ):
            blocks.append(context(f"Next runs: {t.next_runs(task)}"))
        estimate = t.last_event(events, "estimate")
        if estimate is not None:  # recorded by the pre-check from the database's own plan
            blocks.append(context(f"Rows: {escape(estimate.comment)}"))
        what_blocks, sql_cut = t.what(ded)
        blocks += what_blocks
        blocks.append(section(f"*Why*\n{t.reason(ded)}"))

    cast = t.votes(events)
    approvals = sum(1 for v in cast if v.approve)
    if cast:
        lines = [
            f"{':white_check_mark:' if v.approve else ':x:'} {user(v.voter)} "
            f"{'approved' if v.approve else 'rejected'} {when(v.time)}"
            for v in cast[-8:]
        ]
        if len(cast) > 8:
            lines.insert(0, f"… and {len(cast) - 8} earlier votes")
        blocks.append(context("\n".join(lines)))

    status = task.status
    if status == pb.TASK_STATUS_APPROVING:
        blocks.append(
            context(
                f"{approvals} of {required_approvals or 1} approval(s) so far · "
                f"requested {when(task.create_time)}"
            )
        )
        buttons = [
            button("Approve", APPROVE, task.id, style="primary"),
            button("Reject", REJECT, task.id, style="danger"),
        ]
        if sql_cut:
            buttons.append(button("Show full SQL", SHOW_SQL, task.id))
        blocks.append(actions(f"approval:{task.id}", *buttons))
    else:
        blocks.append(section(decision_line(task, events)))
    return message(f"{kind} request #{task.id} for {task.dsn}: {_fallback(task)}", blocks)


def decision_line(task: pb.TaskListData, events: Sequence[pb.TaskEvent]) -> str:
    status = task.status
    if status in DECIDED:
        e = t.last_event(events, "approved")
        who = f" by {user(e.actor)} {when(e.time)}" if e else ""
        return f":white_check_mark: *Approved*{who}"
    if status == pb.TASK_STATUS_NOT_APPROVED:
        e = t.last_event(events, "reject")
        if e is None:
            return ":x: *Rejected*"
        why, _ = clip_escaped(own_words(e.comment).strip(), 1500)
        return f":x: *Rejected* by {user(e.actor)} {when(e.time)}" + (f": {why}" if why else "")
    if status == pb.TASK_STATUS_CANCELED:
        e = t.last_event(events, "cancel")
        who = f" by {user(e.actor)} {when(e.time)}" if e else ""
        return f":no_entry_sign: *Canceled*{who}"
    return f"Status: {status_label(status)}"


def _fallback(task: pb.TaskListData) -> str:
    return status_label(task.status)


def reject_modal(task_id: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps({**metadata, "task": task_id})[:3000],
        "title": plain(f"Reject #{task_id}", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(f"Tell the requester why export *#{escape(task_id)}* is rejected."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain("Reason", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": 3000,
                },
            },
        ],
    }


def full_sql_modal(task_id: str, sql: str) -> dict[str, Any]:
    """The whole statement in sections of ≤ 3000 characters, within a view's size limit."""
    chunks: list[Block] = []
    rest = sql
    total = 0
    while rest and len(chunks) < 95 and total < MAX_SQL_VIEW_CHARS:
        # Take as much raw text as fits once escaped, so that no character is lost.
        taken = min(SQL_CHUNK, len(rest))
        body = escape(rest[:taken].replace("```", "ʼʼʼ"))
        while len(body) > SQL_CHUNK:
            taken -= max((len(body) - SQL_CHUNK) // 4, 1)
            body = escape(rest[:taken].replace("```", "ʼʼʼ"))
        chunks.append(section(f"```{body}```"))
        total += len(body)
        rest = rest[taken:]
    blocks: list[Block] = [*chunks]
    if rest:
        blocks.append(
            context(
                f"{len(rest):,} more characters not shown; "
                f"`woxqaq show {escape(task_id)}` prints the whole statement."
            )
        )
    return {
        "type": "modal",
        "title": plain(clip(f"SQL of #{task_id}", 24), 24),
        "close": plain("Close", 24),
        "blocks": blocks or [section("(empty)")],
    }
