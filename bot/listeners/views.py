"""Modal submissions: a new export, a rejection's reason."""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.blocks.approval import REASON_ACTION, REASON_BLOCK, REJECT_CALLBACK
from bot.blocks.common import channel as channel_mention
from bot.blocks.common import escape
from bot.blocks.export_modal import (
    CALLBACK,
    MAIN_BLOCK,
    Metadata,
    message_modal,
    parse_submission,
    precheck_errors,
)
from bot.errors import describe, status_of
from bot.listeners import guarded, task_id_of, tell
from woxqaq.v1 import task_service_pb2 as pb

if TYPE_CHECKING:
    from bot.app import Deps

log = logging.getLogger(__name__)

# A view submission must be answered within 3 s, and field errors can only go in that
# answer: wait this long for the pre-check, then answer "checking" and finish by views.update.
SUBMIT_WAIT_S = 2.0
# Refused requests whose message belongs on the form's main field.
FIELD_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}


@dataclass(frozen=True)
class Outcome:
    task_id: str = ""
    precheck: tuple[str, ...] = ()
    refused: str = ""  # the service refused the request: a sentence for the person
    refused_code: grpc.StatusCode | None = None
    pending: Any = None  # the submission's future when the pre-check took longer


def _submission_key(view: dict[str, Any], user: str) -> str:
    values = json.dumps(view.get("state", {}).get("values", {}), sort_keys=True)
    digest = hashlib.sha256(values.encode()).hexdigest()[:32]
    return f"{user}:{view.get('id', '')}:{digest}"


def _outcome_of(deps: Deps, user: str, future: Any, timeout: float | None) -> Outcome:
    try:
        resp = future.result(timeout=timeout)
    except (FutureTimeout, grpc.FutureTimeoutError):
        return Outcome(pending=future)
    except grpc.RpcError as exc:
        return Outcome(refused=describe(exc), refused_code=status_of(exc))
    if resp.ok:
        return Outcome(task_id=resp.task_id)
    try:
        detail = deps.service.detail(user, resp.task_id)
        messages = tuple(detail.precheck_messages) or ("the pre-check failed",)
    except grpc.RpcError as exc:
        messages = (describe(exc),)
    return Outcome(task_id=resp.task_id, precheck=messages)


def _kind(request: pb.SubmitTaskRequest) -> str:
    return {pb.TASK_KIND_DATA_IMPORT: "Import", pb.TASK_KIND_DATA_GENERATE: "Generation"}.get(
        request.kind, "Export"
    )


def _confirmation(task_id: str, dsn: str, approval_channel: str, kind: str = "Export") -> str:
    where = f" in {channel_mention(approval_channel)}" if approval_channel else ""
    return (
        f":inbox_tray: {kind} *#{task_id}* for *{escape(dsn)}* is submitted and waits for "
        f"approval{where}. I'll tell you here when it's decided; `/export show {task_id}` "
        "shows where it stands."
    )


def register(app: App) -> None:
    app.view(CALLBACK)(submit_export)
    app.view(REJECT_CALLBACK)(submit_reject)


def submit_export(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    """The export form: field errors go in the ack; a slow pre-check finishes by views.update."""
    user = body["user"]["id"]
    meta = Metadata.load(view.get("private_metadata", ""))
    parsed = parse_submission(view["state"]["values"], meta)
    if parsed.request is None:
        ack(response_action="errors", errors=parsed.errors)
        return
    request = parsed.request
    scheduled = request.schedule.trigger == pb.TRIGGER_KIND_CRON
    if parsed.file_id:
        # Fetching and storing the file takes longer than an answer may: the form says
        # "checking" and is updated with the outcome.
        ack(response_action="update", view=message_modal("Checking…", "Checking your file…"))
        guarded(
            "import submission",
            lambda: _submit_import(deps, client, user, view["id"], parsed.file_id, request, meta),
        )
        return

    def work() -> Outcome:
        future = deps.service.submit_future(user, request)
        return _outcome_of(deps, user, future, SUBMIT_WAIT_S)

    try:
        outcome, first = deps.submissions.run_once(
            _submission_key(view, user), work, SUBMIT_WAIT_S + 0.5
        )
    except Exception:
        log.exception("submission failed")
        ack(
            response_action="errors",
            errors={_main_block(meta): "Something went wrong; try again."},
        )
        return
    if outcome is None:  # a repeat of a submission still being checked: the first answers
        ack()
        return
    if outcome.precheck:
        ack(response_action="errors", errors=precheck_errors(outcome.precheck, meta, scheduled))
        return
    if outcome.refused:
        block = _main_block(meta) if outcome.refused_code in FIELD_CODES else "reason"
        if outcome.refused_code is grpc.StatusCode.NOT_FOUND and "datasource" in outcome.refused:
            block = "datasource"
        ack(response_action="errors", errors={block: outcome.refused[:1500]})
        return
    if outcome.pending is not None:
        if not first:
            ack()
            return
        ack(response_action="update", view=message_modal("Checking…", "Checking your request…"))
        guarded(
            "slow submission",
            lambda: _finish_slow(deps, client, user, view["id"], outcome.pending, request, meta),
        )
        return
    ack()
    if first:
        guarded(
            "confirmation", lambda: _confirm(deps, client, user, outcome.task_id, request, meta)
        )


def submit_reject(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    ack()
    user = body["user"]["id"]
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    task_id = task_id_of(str(meta.get("task", "")))
    reason = (
        view["state"]["values"].get(REASON_BLOCK, {}).get(REASON_ACTION, {}).get("value") or ""
    ).strip()

    def run() -> None:
        if task_id is None:
            tell(client, user, "That form doesn't name a task I understand.")
            return
        try:
            deps.service.reject(user, task_id, reason)
        except grpc.RpcError as exc:
            _tell_via(client, user, meta.get("response_url", ""), describe(exc))

    guarded("reject", run)


def _main_block(meta: Metadata) -> str:
    return MAIN_BLOCK[meta.mode]


def _tell_via(client: WebClient, user: str, response_url: str, text: str) -> None:
    if response_url:
        try:
            WebhookClient(response_url).send(
                text=text, response_type="ephemeral", replace_original=False
            )
            return
        except Exception:
            log.warning("response_url failed; telling by direct message")
    tell(client, user, text)


def _approval_channel(deps: Deps, dsn: str) -> str:
    try:
        return next((d.approval_channel for d in deps.datasources.get() if d.name == dsn), "")
    except grpc.RpcError:
        return ""


def _confirm(
    deps: Deps,
    client: WebClient,
    user: str,
    task_id: str,
    request: pb.SubmitTaskRequest,
    meta: Metadata,
) -> None:
    text = _confirmation(task_id, request.dsn, _approval_channel(deps, request.dsn), _kind(request))
    _tell_via(client, user, meta.response_url, text)


def _submit_import(
    deps: Deps,
    client: WebClient,
    user: str,
    view_id: str,
    file_id: str,
    request: pb.SubmitTaskRequest,
    meta: Metadata,
) -> None:
    """Fetch the Slack file with the bot's token, put it in the object store, submit."""
    try:
        info = client.files_info(file=file_id)["file"]
        name = str(info.get("name") or "upload.csv")
        fetch = urllib.request.Request(
            str(info["url_private_download"]),
            headers={"Authorization": f"Bearer {client.token}"},
        )
        with urllib.request.urlopen(fetch, timeout=120) as body:
            size = int(body.headers.get("Content-Length") or info.get("size") or 0)
            request.dimd.object_key = deps.service.upload(user, name, body, size)
    except (SlackApiError, KeyError, OSError) as exc:
        log.warning("could not fetch the import's file: %s", type(exc).__name__)
        text = ":warning: I couldn't fetch that file from Slack; please attach it again."
        _show(client, user, view_id, meta, "Not submitted", text)
        return
    except grpc.RpcError as exc:
        _show(client, user, view_id, meta, "Not submitted", f":warning: {escape(describe(exc))}")
        return
    future = deps.service.submit_future(user, request)
    _finish_slow(deps, client, user, view_id, future, request, meta)


def _show(
    client: WebClient, user: str, view_id: str, meta: Metadata, title: str, text: str
) -> None:
    try:
        client.views_update(view_id=view_id, view=message_modal(title, text))
    except SlackApiError as exc:  # the person closed the modal: tell them another way
        log.info("could not update the modal: %s", exc.response.get("error"))
        _tell_via(client, user, meta.response_url, text)


def _finish_slow(
    deps: Deps,
    client: WebClient,
    user: str,
    view_id: str,
    future: Any,
    request: pb.SubmitTaskRequest,
    meta: Metadata,
) -> None:
    outcome = _outcome_of(deps, user, future, None)
    if outcome.task_id and not outcome.precheck:
        channel = _approval_channel(deps, request.dsn)
        text = _confirmation(outcome.task_id, request.dsn, channel, _kind(request))
        title = "Submitted"
    elif outcome.precheck:
        problems = "\n".join(f"• {escape(m)}" for m in outcome.precheck)
        text = (
            f":warning: {_kind(request)} *#{outcome.task_id}* failed its pre-check:\n"
            f"{problems}\nRun `/export` again with the request fixed."
        )
        title = "Pre-check failed"
    else:
        text = f":warning: {escape(outcome.refused)}"
        title = "Not submitted"
    _show(client, user, view_id, meta, title, text)
