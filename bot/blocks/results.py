"""Messages to the people a task concerns: decisions, the Execute prompt, progress, results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.blocks import imports
from bot.blocks import task as t
from bot.blocks.approval import DECIDED, decision_line
from bot.blocks.common import (
    BUTTON_URL,
    CANCEL,
    CONFIRM_STOP,
    EXECUTE,
    RENEW_LINK,
    STATUS_LABELS,
    STOP,
    Block,
    actions,
    button,
    channel,
    clip_escaped,
    context,
    escape,
    fields,
    human_size,
    message,
    section,
    user,
    when,
)
from woxqaq.v1 import task_service_pb2 as pb

RUN_DONE = {
    pb.TASK_STATUS_EXECUTE_SUCCESS,
    pb.TASK_STATUS_EXECUTE_FAILED,
    pb.TASK_STATUS_CANCELED,
}


@dataclass(frozen=True)
class Link:
    url: str
    expires: datetime | None
    filename: str


def decision_dm(task: pb.TaskListData, events: Sequence[pb.TaskEvent]) -> dict[str, Any]:
    """Tells the requester what was decided (approved, rejected with the reason, canceled)."""
    kind = imports.kind_of(task)
    where = "for" if imports.is_write(task) else "from"
    blocks = [
        section(
            f"*Your {kind.lower()} #{task.id}* {where} *{escape(task.dsn)}*\n"
            f"{decision_line(task, events)}"
        )
    ]
    if task.status == pb.TASK_STATUS_APPROVED and imports.executor_of(task) == pb.EXEC_AUTO:
        later = "the counts" if imports.is_write(task) else "the link"
        blocks.append(
            context(f"The {kind.lower()} starts now; I'll post {later} here when it's done.")
        )
    word = "approved" if task.status in DECIDED else STATUS_LABELS.get(task.status, "")
    return message(f"{kind} #{task.id} {where} {task.dsn}: {word}", blocks)


def execute_prompt(
    task: pb.TaskListData, *, started_by: str = "", run_id: str = ""
) -> dict[str, Any]:
    """The Execute button for whoever runs the approved task; it goes once a run started."""
    summary = (
        f"*Export #{task.id}* from *{escape(task.dsn)}* is approved and waits for you to run it."
    )
    blocks: list[Block] = [section(summary)]
    what_blocks, _ = t.what(task.ded, sql_limit=1200)
    blocks += what_blocks
    if started_by:
        blocks.append(
            context(f":arrow_forward: Run {escape(run_id)} started by {user(started_by)}.")
        )
    elif task.status in (pb.TASK_STATUS_APPROVED, pb.TASK_STATUS_EXECUTE_FAILED):
        blocks.append(
            actions(f"execute:{task.id}", button("Execute", EXECUTE, task.id, style="primary"))
        )
    else:
        blocks.append(context(f"Status: {STATUS_LABELS.get(task.status, 'unknown')}"))
    return message(f"Export #{task.id} is approved: run it when you're ready", blocks)


def run_message(
    task: pb.TaskListData,
    run: pb.TaskRun,
    *,
    rows_so_far: int | None = None,
    link: Link | None = None,
    link_problem: str = "",
) -> dict[str, Any]:
    """ONE message per run: progress while it runs, then the link or the failure's reason."""
    kind = imports.kind_of(task)
    doing = "Writing" if imports.is_write(task) else "Exporting"
    where = "into" if imports.is_write(task) else "from"
    title = f"*{kind} #{task.id}* {where} *{escape(task.dsn)}* · run {escape(run.id)}"
    if run.status not in RUN_DONE:
        rows = rows_so_far if rows_so_far is not None else run.rows
        progress = f"{rows:,} rows so far" if rows else "starting"
        scheduled = task.schedule.trigger == pb.TRIGGER_KIND_CRON
        stop = "Stop (ends the schedule)" if scheduled else "Stop"
        blocks = [
            section(f":arrows_counterclockwise: {title}\n{doing}… {progress}"),
            context(f"Started {when(run.start_time)} by {user(run.executor)}"),
            actions(
                f"run:{task.id}:{run.id}",
                button(stop, STOP, task.id, style="danger", confirm=CONFIRM_STOP),
            ),
        ]
        return message(f"{kind} #{task.id}: {doing.lower()}, {progress}", blocks)

    if run.status == pb.TASK_STATUS_CANCELED:
        reason, _ = clip_escaped(run.error or "canceled", 2500)
        blocks = [section(f":no_entry_sign: {title}\n*Stopped:* {reason}. No file was kept.")]
        return message(f"Export #{task.id} was stopped", blocks)

    if run.status == pb.TASK_STATUS_EXECUTE_FAILED:
        reason, _ = clip_escaped(run.error or "no reason recorded", 2500)
        blocks = [section(f":boom: {title}\n*Failed:* {reason}")]
        if (
            task.status == pb.TASK_STATUS_EXECUTE_FAILED
            and imports.executor_of(task) != pb.EXEC_AUTO
        ):
            blocks.append(actions(f"execute:{task.id}", button("Execute again", EXECUTE, task.id)))
        return message(f"{kind} #{task.id} failed", blocks)

    if imports.is_write(task):
        return _written(task, run, title, link)
    blocks = [
        section(f":package: {title}\nDone."),
        fields(
            ("File", escape(run.filename) or "—"),
            ("Rows", f"{run.rows:,}"),
            ("Size", human_size(run.bytes)),
            ("Link expires", when(link.expires) if link else "—"),
        ),
    ]
    buttons = []
    if link and len(link.url) <= BUTTON_URL:
        buttons.append(button("Download", "download_link", run.id, style="primary", url=link.url))
    elif link:
        blocks.append(section("The link is too long for a button; run `woxqaq download` instead."))
    if link_problem:
        problem, _ = clip_escaped(link_problem, 1500)
        blocks.append(section(f":warning: {problem}"))
    buttons.append(button("Get a new link", RENEW_LINK, f"{task.id}:{run.id}"))
    blocks.append(actions(f"result:{task.id}:{run.id}", *buttons))
    return message(f"Export #{task.id} is ready: {run.rows:,} rows", blocks)


def _written(
    task: pb.TaskListData, run: pb.TaskRun, title: str, link: Link | None
) -> dict[str, Any]:
    blocks: list[Block] = [section(f":inbox_tray: {title}\nWritten."), imports.written_fields(run)]
    if link and run.backup_filename and len(link.url) <= BUTTON_URL:
        blocks.append(
            actions(
                f"result:{task.id}:{run.id}",
                button("Download the replaced rows", "download_link", run.id, url=link.url),
            )
        )
    counts = f"{run.rows:,} written, {run.rows_skipped:,} skipped, {run.rows_updated:,} updated"
    return message(f"{imports.kind_of(task)} #{task.id} is done: {counts}", blocks)


CHANNEL_HINTS = {
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not a member of that channel",
    "is_archived": "the channel is archived",
}


def schedule_problem(
    task: pb.TaskListData, where: str, error: str, result: dict[str, Any]
) -> dict[str, Any]:
    """The result of a scheduled run, to its owner, because its channel would not take it."""
    hint = CHANNEL_HINTS.get(error, error)
    warning = section(
        f":warning: I couldn't post this run of your scheduled export *#{task.id}* to "
        f"{channel(where)}: {escape(hint)}. Invite the bot there (`/invite @woxqaq`); "
        "meanwhile the result comes to you."
    )
    return message(result["text"], [warning, *result["blocks"]][:50])


def delivery_problem(task: pb.TaskListData, where: str, error: str) -> dict[str, Any]:
    """Tells the requester that a message about their task could not be posted, and why."""
    hint = CHANNEL_HINTS.get(error, error)
    blocks = [
        section(
            f":warning: I couldn't post the approval request of your export *#{task.id}* to "
            f"{channel(where)}: {escape(hint)}. Ask an admin of *{escape(task.dsn)}* to "
            "invite the bot there (`/invite @woxqaq`) or to fix the datasource's "
            "`approval_channel`; approvers can still find it in their App Home."
        )
    ]
    if task.status == pb.TASK_STATUS_APPROVING:
        blocks.append(actions(f"cancel:{task.id}", button("Cancel the request", CANCEL, task.id)))
    return message(f"Export #{task.id}: the approval request could not be posted", blocks)
