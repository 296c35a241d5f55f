"""`/export` and its subcommands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import grpc
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import tasks as task_blocks
from bot.blocks.export_modal import Metadata, export_modal
from bot.errors import describe
from bot.listeners import guarded, task_id_of
from woxqaq.v1 import task_service_pb2 as pb

if TYPE_CHECKING:
    from bot.app import Deps

log = logging.getLogger(__name__)


def open_export_modal(deps: Deps, client: WebClient, trigger_id: str, meta: Metadata) -> str | None:
    """Open the form; returns a sentence for the person when it could not be opened."""
    try:
        datasources = deps.datasources.get()
    except grpc.RpcError as exc:
        return describe(exc)
    try:
        client.views_open(trigger_id=trigger_id, view=export_modal(datasources, meta))
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown")
        log.warning("views.open failed: %s", error)
        if error == "expired_trigger_id":
            return "The form took too long to open; please run `/export` again."
        return f"I couldn't open the form ({error}); please try again."
    return None


def register(app: App) -> None:
    app.command("/export")(export_command)


def export_command(
    ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond, deps: Deps
) -> None:
    ack()
    guarded("/export", lambda: handle_export(deps, command, client, respond))


def handle_export(deps: Deps, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """`/export` opens the form; `list`, `schedules`, `show <id>` and `help` answer in place."""
    user = command["user_id"]
    words = (command.get("text") or "").split()
    sub = words[0].lower() if words else ""

    def reply(msg: dict[str, Any]) -> None:
        respond(**msg, response_type="ephemeral")

    try:
        if sub == "":
            meta = Metadata(
                channel=command.get("channel_id", ""), response_url=command.get("response_url", "")
            )
            problem = open_export_modal(deps, client, command["trigger_id"], meta)
            if problem:
                respond(text=problem, response_type="ephemeral")
        elif sub == "list":
            page = deps.service.list_tasks(user, pb.TASK_ROLE_COMMITTER, page_size=15)
            reply(task_blocks.task_list("Your recent exports", page.data, page.total))
        elif sub == "schedules":
            reply(task_blocks.schedule_list(_active_schedules(deps, user), user))
        elif sub == "show":
            task_id = task_id_of(words[1]) if len(words) > 1 else None
            if task_id is None:
                respond(
                    text="Usage: `/export show <id>`, e.g. `/export show 42`.",
                    response_type="ephemeral",
                )
                return
            detail = deps.service.detail(user, str(task_id))
            reply(task_blocks.task_detail(detail, user))
        elif sub == "help":
            reply(task_blocks.help_message())
        else:
            reply(task_blocks.help_message(f"I don't know `/export {sub[:50]}`."))
    except grpc.RpcError as exc:
        respond(text=describe(exc), response_type="ephemeral")


SCHEDULE_PAGES = 5  # of 100 tasks per state; schedules are few next to one-off exports


def _active_schedules(deps: Deps, user: str) -> list[pb.TaskListData]:
    """Scheduled exports the user may see that are approved or waiting for approval."""
    found: list[pb.TaskListData] = []
    for status in (pb.TASK_STATUS_APPROVED, pb.TASK_STATUS_APPROVING):
        for current in range(1, SCHEDULE_PAGES + 1):
            page = deps.service.list_tasks(user, status=status, page_size=100, current=current)
            found += [t for t in page.data if t.schedule.trigger == pb.TRIGGER_KIND_CRON]
            if current * 100 >= page.total:
                break
    return found
