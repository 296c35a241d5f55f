"""Buttons: approve, reject, show the full SQL, execute, cancel, stop a running export, renew
a link, the form's mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import common as c
from bot.blocks.approval import full_sql_modal, reject_modal
from bot.blocks.export_modal import MODES, Metadata, export_modal
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


def register(app: App) -> None:
    app.action(c.APPROVE)(approve)
    app.action(c.REJECT)(reject)
    app.action(c.SHOW_SQL)(show_sql)
    app.action(c.EXECUTE)(execute)
    app.action(c.CANCEL)(cancel)
    app.action(c.STOP)(stop)
    app.action(c.RENEW_LINK)(renew_link)
    app.action(c.DOWNLOAD)(download)
    app.action(c.EXPORT_MODE)(switch_mode)
    app.action(c.NEW_EXPORT)(new_export)
    app.action(c.REFRESH_HOME)(refresh_home)


@dataclass(frozen=True)
class Click:
    """A click on a button whose value names a task, with what answering it needs."""

    deps: Deps
    user: str
    task_id: int
    body: dict[str, Any]
    action: dict[str, Any]
    client: WebClient
    respond: Respond

    def tell(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        tell(self.client, self.user, text, respond=self.respond, blocks=blocks)


TaskButtonListener = Callable[..., None]


def task_button(work: Callable[[Click], None]) -> TaskButtonListener:
    """The listener of a button that names a task: ack, then `work` after the ack.

    An edited value and a request the service refuses are told to the person in one place;
    a click from the App Home refreshes it, so the lists show what the click changed.
    """

    def listener(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        client: WebClient,
        respond: Respond,
        deps: Deps,
    ) -> None:
        ack()
        user = body["user"]["id"]
        task_id = task_id_of(action.get("value", ""))

        def run() -> None:
            if task_id is None:
                tell(client, user, EDITED, respond=respond)
                return
            try:
                work(Click(deps, user, task_id, body, action, client, respond))
            except grpc.RpcError as exc:
                tell(client, user, describe(exc), respond=respond)
            if _from_home(body):
                publish_home(deps, client, user)

        guarded(work.__name__, run)

    listener.__name__ = listener.__qualname__ = work.__name__
    listener.__doc__ = work.__doc__
    return listener


@task_button
def approve(click: Click) -> None:
    # The message itself is updated by the delivery of the service's notification.
    click.deps.service.approve(click.user, click.task_id)


@task_button
def reject(click: Click) -> None:
    """Ask for the reason, only of someone who may reject: the service knows who that is."""
    service = click.deps.service
    page = service.list_tasks(
        click.user, pb.TASK_ROLE_TO_APPROVE, page_size=1, task_id=str(click.task_id)
    )
    if not page.data:
        detail = service.detail(click.user, str(click.task_id))
        click.tell(_why_not_voting(detail.task, click.user))
        return
    meta = {"response_url": click.body.get("response_url", "") or ""}
    click.client.views_open(
        trigger_id=click.body["trigger_id"], view=reject_modal(str(click.task_id), meta)
    )


@task_button
def show_sql(click: Click) -> None:
    detail = click.deps.service.detail(click.user, str(click.task_id))
    if not is_sql(detail.task.ded):
        click.tell(f"Export #{click.task_id} exports tables, not a SQL query.")
        return
    click.client.views_open(
        trigger_id=click.body["trigger_id"],
        view=full_sql_modal(str(click.task_id), detail.task.ded.ebs.statement),
    )


@task_button
def execute(click: Click) -> None:
    click.deps.service.execute(click.user, click.task_id)


@task_button
def cancel(click: Click) -> None:
    click.deps.service.cancel(click.user, click.task_id)
    click.tell(f"Export #{click.task_id} is canceled.")


@task_button
def stop(click: Click) -> None:
    """Stop a running export (its submitter or an approver): the service stops the query;
    the run's message says so once it has stopped."""
    click.deps.service.cancel(click.user, click.task_id)
    click.tell(f"Stopping export #{click.task_id}: its message will say when it has stopped.")


@task_button
def renew_link(click: Click) -> None:
    """A fresh download link for a finished run, put in place of the expired one."""
    service, user, task_id = click.deps.service, click.user, click.task_id
    run_id = click.action.get("value", "").partition(":")[2].strip()
    if run_id and not run_id.isdigit():
        click.tell(EDITED)
        return
    detail = service.detail(user, str(task_id))
    run = next((r for r in detail.runs if r.id == run_id), None) if run_id else None
    run = run or next((r for r in detail.runs if r.status == pb.TASK_STATUS_EXECUTE_SUCCESS), None)
    if run is None:
        click.tell(f"Export #{task_id} has no finished file yet.")
        return
    got = service.download_url(user, str(task_id), run.id)
    link = Link(got.url, c.as_datetime(got.expire_time), got.filename)
    msg = run_message(detail.task, run, link=link)
    container = click.body.get("container") or {}
    if container.get("type") == "message" and not container.get("is_ephemeral"):
        try:
            click.client.chat_update(
                channel=container["channel_id"], ts=container["message_ts"], **msg
            )
            return
        except SlackApiError as exc:
            log.warning("could not update the result message: %s", exc.response.get("error"))
    click.tell(msg["text"], blocks=msg["blocks"])


def download(ack: Ack) -> None:
    ack()  # a link button: Slack opens the URL; nothing to do here


def switch_mode(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    """The export form's SQL / tables choice: the form is redrawn with the other fields."""
    ack()
    view = body["view"]
    mode = (action.get("selected_option") or {}).get("value")
    meta = Metadata.load(view.get("private_metadata", ""))
    if mode not in MODES or mode == meta.mode:
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


def new_export(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    user = body["user"]["id"]

    def run() -> None:
        problem = open_export_modal(deps, client, body["trigger_id"], Metadata())
        if problem:
            tell(client, user, problem)

    guarded("new export", run)


def refresh_home(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
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
