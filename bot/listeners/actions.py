"""Buttons: approve, reject, show the full SQL, execute, cancel, renew a link, the form's mode."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import grpc
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import common as c
from bot.blocks.approval import full_sql_modal, reject_modal
from bot.blocks.export_modal import MODE_SQL, MODE_TABLES, Metadata, export_modal
from bot.blocks.results import Link, run_message
from bot.blocks.task import is_sql
from bot.errors import describe
from bot.listeners import guarded, task_id_of, tell
from bot.listeners.commands import open_export_modal
from bot.listeners.events import publish_home
from woxqaq.v1 import task_service_pb2 as pb

if TYPE_CHECKING:
    from bot.app import Deps

log = logging.getLogger(__name__)

EDITED = "That button doesn't carry a task id I understand."


def _from_home(body: dict[str, Any]) -> bool:
    return (body.get("container") or {}).get("type") == "view" and (
        (body.get("view") or {}).get("type") == "home"
    )


def register(app: App, deps: Deps) -> None:
    def button(action_id: str):  # type: ignore[no-untyped-def]
        """Register `work(user, task_id, body, client, respond)` to run after the ack."""

        def wrap(work):  # type: ignore[no-untyped-def]
            @app.action(action_id)
            def listener(
                ack: Ack,
                body: dict[str, Any],
                action: dict[str, Any],
                client: WebClient,
                respond: Respond,
            ) -> None:
                ack()
                user = body["user"]["id"]
                task_id = task_id_of(action.get("value", ""))

                def run() -> None:
                    if task_id is None:
                        tell(client, user, EDITED, respond=respond)
                        return
                    try:
                        work(user, task_id, body, action, client, respond)
                    except grpc.RpcError as exc:
                        tell(client, user, describe(exc), respond=respond)
                    if _from_home(body):
                        publish_home(deps, client, user)

                guarded(action_id, run)

            return listener

        return wrap

    @button(c.APPROVE)
    def approve(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        # The message itself is updated by the delivery of the service's notification.
        deps.service.approve(user, task_id)

    @button(c.REJECT)
    def reject(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        # Ask for the reason only of someone who may reject: the service knows who that is.
        page = deps.service.list_tasks(
            user, pb.TASK_ROLE_TO_APPROVE, page_size=1, task_id=str(task_id)
        )
        if not page.data:
            detail = deps.service.detail(user, str(task_id))
            tell(client, user, _why_not_voting(detail.task, user), respond=respond)
            return
        meta = {"response_url": body.get("response_url", "") or ""}
        client.views_open(trigger_id=body["trigger_id"], view=reject_modal(str(task_id), meta))

    @button(c.SHOW_SQL)
    def show_sql(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        detail = deps.service.detail(user, str(task_id))
        if not is_sql(detail.task.ded):
            tell(
                client, user, f"Export #{task_id} exports tables, not a SQL query.", respond=respond
            )
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=full_sql_modal(str(task_id), detail.task.ded.ebs.statement),
        )

    @button(c.EXECUTE)
    def execute(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        deps.service.execute(user, task_id)

    @button(c.CANCEL)
    def cancel(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        deps.service.cancel(user, task_id)
        tell(client, user, f"Export #{task_id} is canceled.", respond=respond)

    @button(c.RENEW_LINK)
    def renew(
        user: str, task_id: int, body: dict, action: dict, client: WebClient, respond: Respond
    ) -> None:
        run_id = action.get("value", "").partition(":")[2].strip()
        if run_id and not run_id.isdigit():
            tell(client, user, EDITED, respond=respond)
            return
        detail = deps.service.detail(user, str(task_id))
        run = next((r for r in detail.runs if r.id == run_id), None) if run_id else None
        run = run or next(
            (r for r in detail.runs if r.status == pb.TASK_STATUS_EXECUTE_SUCCESS), None
        )
        if run is None:
            tell(client, user, f"Export #{task_id} has no finished file yet.", respond=respond)
            return
        got = deps.service.download_url(user, str(task_id), run.id)
        link = Link(got.url, c.as_datetime(got.expire_time), got.filename)
        msg = run_message(detail.task, run, link=link)
        container = body.get("container") or {}
        if container.get("type") == "message" and not container.get("is_ephemeral"):
            try:
                client.chat_update(
                    channel=container["channel_id"], ts=container["message_ts"], **msg
                )
                return
            except SlackApiError as exc:
                log.warning("could not update the result message: %s", exc.response.get("error"))
        tell(client, user, msg["text"], respond=respond, blocks=msg["blocks"])

    @app.action(c.DOWNLOAD)
    def download(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL; nothing to do here

    @app.action(c.EXPORT_MODE)
    def switch_mode(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        view = body["view"]
        mode = (action.get("selected_option") or {}).get("value")
        meta = Metadata.load(view.get("private_metadata", ""))
        if mode not in (MODE_SQL, MODE_TABLES) or mode == meta.mode:
            return

        def run() -> None:
            new = Metadata(mode=mode, channel=meta.channel, response_url=meta.response_url)
            try:
                client.views_update(
                    view_id=view["id"],
                    hash=view.get("hash"),
                    view=export_modal(deps.datasources.get(), new),
                )
            except SlackApiError as exc:  # hash_conflict: the person changed the form meanwhile
                log.info("mode switch not applied: %s", exc.response.get("error"))

        guarded("mode switch", run)

    @app.action(c.NEW_EXPORT)
    def new_export(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user = body["user"]["id"]

        def run() -> None:
            problem = open_export_modal(deps, client, body["trigger_id"], Metadata())
            if problem:
                tell(client, user, problem)

        guarded("new export", run)

    @app.action(c.REFRESH_HOME)
    def refresh_home(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        guarded("home refresh", lambda: publish_home(deps, client, body["user"]["id"]))


def _why_not_voting(task: Any, user: str) -> str:
    if task.submitter == user:
        return (
            f"You can't decide on export #{task.id}: nobody approves or rejects their own request."
        )
    if task.status != pb.TASK_STATUS_APPROVING:
        return f"Export #{task.id} is no longer waiting for approval; nothing changed."
    return (
        f"You can't decide on export #{task.id}: only the approvers of *{c.escape(task.dsn)}* "
        "can, and each of them once."
    )
