"""Events: the App Home tab."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import grpc
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.home import PER_LIST, home_view
from bot.errors import describe
from bot.listeners import guarded
from woxqaq.v1 import task_service_pb2 as pb

if TYPE_CHECKING:
    from bot.app import Deps

log = logging.getLogger(__name__)


def publish_home(deps: Deps, client: WebClient, user: str) -> None:
    """Render the person's App Home from the service's lists and publish it."""
    empty = pb.ListTaskResponse()
    try:
        to_approve = deps.service.list_tasks(user, pb.TASK_ROLE_TO_APPROVE, page_size=PER_LIST)
        to_execute = deps.service.list_tasks(user, pb.TASK_ROLE_TO_EXECUTE, page_size=PER_LIST)
        mine = deps.service.list_tasks(user, pb.TASK_ROLE_COMMITTER, page_size=PER_LIST)
        problem = ""
    except grpc.RpcError as exc:
        to_approve = to_execute = mine = empty
        problem = describe(exc)
    view = home_view(
        user,
        to_approve=to_approve.data,
        to_approve_total=to_approve.total,
        to_execute=to_execute.data,
        to_execute_total=to_execute.total,
        mine=mine.data,
        mine_total=mine.total,
        problem=problem,
    )
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("views.publish failed: %s", exc.response.get("error", "unknown"))


def register(app: App) -> None:
    app.event("app_home_opened")(home_opened)


def home_opened(event: dict[str, Any], client: WebClient, deps: Deps) -> None:
    # Bolt acknowledges events before this runs.
    if event.get("tab", "home") != "home":
        return
    guarded("app home", lambda: publish_home(deps, client, event["user"]))
