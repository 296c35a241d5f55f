"""Answers to `/export list`, `/export show <id>`, `/export schedules` and `/export help`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks import generation, imports
from bot.blocks import task as t
from bot.blocks.common import (
    CANCEL,
    CONFIRM_STOP,
    EXECUTE,
    RENEW_LINK,
    STOP,
    Block,
    actions,
    button,
    clip_escaped,
    context,
    divider,
    escape,
    fields,
    header,
    human_size,
    message,
    mrkdwn,
    own_words,
    plain,
    section,
    status_label,
    user,
    when,
)
from woxqaq.v1 import task_service_pb2 as pb

CANCELABLE = {
    pb.TASK_STATUS_NOT_START,
    pb.TASK_STATUS_PRE_CHECK,
    pb.TASK_STATUS_PRE_CHECK_SUCCESS,
    pb.TASK_STATUS_APPROVING,
    pb.TASK_STATUS_APPROVED,
}

MAX_LISTED = 20
CONFIRM_CANCEL = {
    "title": plain("Cancel the schedule?", 100),
    "text": mrkdwn("It will not run again. Runs already made keep their files."),
    "confirm": plain("Cancel it", 30),
    "deny": plain("Keep it", 30),
    "style": "danger",
}

HELP = (
    "*woxqaq* gets data out of production databases safely, with approvals.\n"
    "• `/export` — open the form to request an export (SQL or tables)\n"
    "• `/export list` — your recent exports\n"
    "• `/export show <id>` — one export: what, who decided, runs and links\n"
    "• `/export schedules` — active scheduled exports, their next run, Cancel for yours\n"
    "• `/export help` — this help\n"
    "Approvers get the request in the datasource's channel; your App Home lists what waits "
    "for you."
)


def help_message(prefix: str = "") -> dict[str, Any]:
    text = f"{prefix}\n{HELP}" if prefix else HELP
    return message("How to use /export", [section(text)])


def task_line(task: pb.TaskListData) -> str:
    if imports.is_import(task):
        why, what = task.dimd.import_reason, f"import into `{escape(task.dimd.table)}`"
    elif generation.is_generate(task):
        g = task.dgd
        why, what = g.generate_reason, f"{g.rows:,} test rows into `{escape(g.table)}`"
    else:
        why, what = task.ded.export_reason, "SQL" if t.is_sql(task.ded) else "tables"
    first = (why.strip().splitlines() or [""])[0]
    reason, _ = clip_escaped(first, 120)
    line = (
        f"*#{task.id}* · {escape(task.dsn)} · {what} · {status_label(task.status)} · "
        f"{when(task.create_time)}"
    )
    return f"{line}\n{reason}" if reason else line


def task_list(title: str, tasks: Sequence[pb.TaskListData], total: int) -> dict[str, Any]:
    if not tasks:
        return message(title, [section(f"*{escape(title)}*\nNothing here yet.")])
    blocks: list[Block] = [section(f"*{escape(title)}*")]
    for task in tasks[:20]:
        blocks.append(section(task_line(task)))
    if total > len(tasks):
        blocks.append(context(f"Showing {len(tasks)} of {total}. `/export show <id>` for one."))
    return message(title, blocks)


def schedule_list(tasks: Sequence[pb.TaskListData], viewer: str) -> dict[str, Any]:
    """Active schedules, each with its next run and, for its submitter, a Cancel button."""
    title = "Active scheduled exports"
    if not tasks:
        return message(
            title,
            [section(f"*{title}*\nNone yet. Tick “Run on a schedule” in `/export` to make one.")],
        )
    blocks: list[Block] = [section(f"*{title}*")]
    for task in tasks[:MAX_LISTED]:
        line = (
            f"*#{task.id}* · {escape(task.dsn)} · {t.schedule_line(task)} · "
            f"{status_label(task.status)} · by {user(task.submitter)}\n"
            f"Next run: {t.next_runs(task, 1)}"
        )
        accessory = (
            button("Cancel", CANCEL, task.id, style="danger", confirm=CONFIRM_CANCEL)
            if task.submitter == viewer
            else None
        )
        blocks.append(section(line, accessory=accessory))
    if len(tasks) > MAX_LISTED:
        blocks.append(
            context(f"Showing {MAX_LISTED} of {len(tasks)}. `/export show <id>` for one.")
        )
    return message(title, blocks)


def task_detail(detail: pb.GetTaskDetailResponse, viewer: str) -> dict[str, Any]:
    task = detail.task
    ded = task.ded
    kind = imports.kind_of(task)
    blocks: list[Block] = [header(f"{kind} #{task.id}")]
    if imports.is_write(task):
        blocks.append(
            fields(
                ("Status", status_label(task.status)),
                ("Requested by", user(task.submitter)),
                ("Datasource", escape(task.dsn)),
            )
        )
        if generation.is_generate(task):
            blocks += generation.generate_summary(task, detail.preview)
            blocks.append(section(f"*Why*\n{generation.generate_reason(task, 800)}"))
        else:
            blocks += imports.import_summary(task, detail.preview)
            blocks.append(section(f"*Why*\n{imports.import_reason(task, 800)}"))
    else:
        blocks.append(
            fields(
                ("Status", status_label(task.status)),
                ("Requested by", user(task.submitter)),
                (
                    "Datasource",
                    escape(task.dsn) + (f" / `{escape(task.database)}`" if task.database else ""),
                ),
                ("Format", t.format_line(ded)),
                ("Runs", t.executor_line(ded)),
                ("Schedule", t.schedule_line(task)),
            )
        )
        scheduled_ok = task.status == pb.TASK_STATUS_APPROVED
        if task.schedule.trigger == pb.TRIGGER_KIND_CRON and scheduled_ok:
            blocks.append(context(f"Next runs: {t.next_runs(task)}"))
        what_blocks, _ = t.what(ded, sql_limit=2000)
        blocks += what_blocks
        blocks.append(section(f"*Why*\n{t.reason(ded, 800)}"))
    if detail.precheck_messages:
        text, _ = clip_escaped("\n".join(f"• {m}" for m in detail.precheck_messages), 2500)
        blocks.append(section(f"*Pre-check problems*\n{text}"))
    history = [_event_line(e) for e in detail.events[-12:]]
    if history:
        blocks.append(section("*History*\n" + "\n".join(history)))
    for run in detail.runs[:5]:
        line = f"Run {escape(run.id)}: {status_label(run.status)}"
        if run.status == pb.TASK_STATUS_EXECUTE_SUCCESS and imports.is_write(task):
            line += (
                f", {run.rows:,} written, {run.rows_skipped:,} skipped, "
                f"{run.rows_updated:,} updated"
            )
        elif run.status == pb.TASK_STATUS_EXECUTE_SUCCESS:
            line += f", {run.rows:,} rows, {human_size(run.bytes)}, `{escape(run.filename)}`"
        elif run.error:
            line += f": {clip_escaped(run.error, 400)[0]}"
        blocks.append(context(line))
    buttons = []
    if task.status in CANCELABLE and task.submitter == viewer:
        buttons.append(button("Cancel", CANCEL, task.id, style="danger"))
    if task.status == pb.TASK_STATUS_EXECUTING and task.submitter == viewer:
        buttons.append(button("Stop", STOP, task.id, style="danger", confirm=CONFIRM_STOP))
    scheduled = task.schedule.trigger == pb.TRIGGER_KIND_CRON
    manual = imports.executor_of(task) != pb.EXEC_AUTO
    if task.status == pb.TASK_STATUS_APPROVED and manual and not scheduled:
        buttons.append(button("Execute", EXECUTE, task.id, style="primary"))
    if task.status == pb.TASK_STATUS_EXECUTE_SUCCESS and detail.runs:
        buttons.append(button("Get the link", RENEW_LINK, f"{task.id}:{detail.runs[0].id}"))
    if buttons:
        blocks.append(divider())
        blocks.append(actions(f"detail:{task.id}", *buttons))
    return message(f"{kind} #{task.id}: {status_label(task.status)}", blocks)


SYSTEM_ACTORS = ("pre-check", "export", "auto", "scheduler")


def _event_line(e: pb.TaskEvent) -> str:
    who = escape(e.actor) if e.actor in SYSTEM_ACTORS else user(e.actor)
    line = f"{when(e.time)} · {who} · {escape(e.action)}"
    if comment := own_words(e.comment):
        line += f": {clip_escaped(comment, 150)[0]}"
    return line
