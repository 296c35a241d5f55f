"""The App Home tab: my recent exports, those waiting for my approval or for me to run them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks import generation, imports
from bot.blocks import task as t
from bot.blocks.common import (
    APPROVE,
    CANCEL,
    EXECUTE,
    NEW_EXPORT,
    REFRESH_HOME,
    REJECT,
    RENEW_LINK,
    VIEW_BLOCKS,
    Block,
    actions,
    button,
    context,
    divider,
    escape,
    header,
    section,
    user,
)
from bot.blocks.tasks import CANCELABLE, task_line
from woxqaq.v1 import task_service_pb2 as pb

PER_LIST = 8  # three lists of 8 tasks, up to 3 blocks each, stay under 100 blocks


def _approve_item(task: pb.TaskListData) -> list[Block]:
    if imports.is_import(task):
        what_blocks = imports.import_summary(task, None)
    elif generation.is_generate(task):
        what_blocks = generation.generate_summary(task, None)
    else:
        what_blocks = t.what(task.ded, sql_limit=600)[0]
    return [
        section(f"{task_line(task)}\nRequested by {user(task.submitter)}"),
        *what_blocks,
        actions(
            f"home-approve:{task.id}",
            button("Approve", APPROVE, task.id, style="primary"),
            button("Reject", REJECT, task.id, style="danger"),
        ),
    ]


def _execute_item(task: pb.TaskListData) -> list[Block]:
    return [
        section(task_line(task)),
        actions(f"home-execute:{task.id}", button("Execute", EXECUTE, task.id, style="primary")),
    ]


def _mine_item(task: pb.TaskListData) -> list[Block]:
    blocks: list[Block] = [section(task_line(task))]
    buttons = []
    if task.status in CANCELABLE:
        buttons.append(button("Cancel", CANCEL, task.id))
    if task.status == pb.TASK_STATUS_EXECUTE_SUCCESS:
        buttons.append(button("Get the link", RENEW_LINK, f"{task.id}:"))
    if buttons:
        blocks.append(actions(f"home-mine:{task.id}", *buttons))
    return blocks


def _list(title: str, tasks: Sequence[pb.TaskListData], total: int, item: Any) -> list[Block]:
    blocks: list[Block] = [header(title)]
    if not tasks:
        blocks.append(context("Nothing here."))
        return blocks
    for task in tasks[:PER_LIST]:
        blocks += item(task)
    if total > PER_LIST:
        blocks.append(context(f"{total - PER_LIST} more not shown; `/export list` for yours."))
    return blocks


def home_view(
    viewer: str,
    *,
    to_approve: Sequence[pb.TaskListData],
    to_approve_total: int,
    to_execute: Sequence[pb.TaskListData],
    to_execute_total: int,
    mine: Sequence[pb.TaskListData],
    mine_total: int,
    problem: str = "",
) -> dict[str, Any]:
    blocks: list[Block] = [
        section(
            f"Hi {user(viewer)}, here are your data exports.",
            accessory=button("New export", NEW_EXPORT, "home", style="primary"),
        ),
        actions("home-top", button("Refresh", REFRESH_HOME, "home")),
    ]
    if problem:
        blocks.append(section(f":warning: {escape(problem)}"))
    blocks += _list("Waiting for your approval", to_approve, to_approve_total, _approve_item)
    blocks.append(divider())
    blocks += _list("Waiting for you to run", to_execute, to_execute_total, _execute_item)
    blocks.append(divider())
    blocks += _list("Your recent exports", mine, mine_total, _mine_item)
    return {"type": "home", "blocks": blocks[:VIEW_BLOCKS]}
