"""Delivering the service's notifications to Slack: post once, then update in place.

The loop Pulls one notification at a time with a lease (so a stopped bot holds nothing and
a killed one's lease lapses), renders it from the task's current state, and posts or
updates the messages it concerns. Each message posted is recorded with the service at once
(SaveMessageRefs), so a later notification — or this one delivered again after a crash —
edits it instead of posting a second one. Rendering from the current state makes a
repeated delivery harmless.

Failures are never dropped silently: a channel the bot cannot post to is reported to the
requester by direct message; anything else is Acked as failed so the service retries it
with back-off (HTTP 429 after the client's own retries: after Retry-After). A token Slack
refuses (revoked, app uninstalled) pauses delivery instead: the notifications wait in the
outbox, the bot reports itself unhealthy, and asks Slack now and then whether the token
works again.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import grpc
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import imports
from bot.blocks.approval import approval_message
from bot.blocks.common import as_datetime
from bot.blocks.results import (
    RUN_DONE,
    Link,
    decision_dm,
    delivery_problem,
    execute_prompt,
    run_message,
    schedule_problem,
)
from bot.health import TOKEN_ERRORS, Health
from bot.metrics import BotMetrics
from bot.service_client import ServiceClient
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import task_service_pb2 as pb

log = logging.getLogger(__name__)

# The approval channel cannot take the message: tell the requester instead of retrying.
CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
DECISIONS = {"approved", "rejected", "canceled"}
APPROVAL_KINDS = {"approval_requested", "vote", *DECISIONS}


class Retry(Exception):
    """Deliver again later; `after_s` is Slack's Retry-After when it gave one."""

    def __init__(self, message: str, after_s: int = 0) -> None:
        super().__init__(message)
        self.after_s = after_s


class TokenRefused(Retry):
    """Slack refuses the bot token itself: no retry can succeed until the token works."""

    def __init__(self, error: str) -> None:
        super().__init__(f"slack: {error}", after_s=1)
        self.error = error


@dataclass
class _Delivering:
    """One notification being delivered: its messages so far and problems reported."""

    n: npb.Notification
    refs: dict[str, npb.MessageRef]
    posted: list[npb.MessageRef] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Delivery:
    def __init__(
        self,
        client: WebClient,
        service: ServiceClient,
        consumer: str,
        *,
        poll_interval_s: float = 1.0,
        lease_s: int = 120,
        progress_interval_s: float = 2.0,
        upload_max_bytes: int = 0,
        health: Health | None = None,
        token_check_interval_s: float = 30.0,
        metrics: BotMetrics | None = None,
    ) -> None:
        self.client = client
        self.health = health or Health()
        self.token_check_interval_s = token_check_interval_s
        self.metrics = metrics or BotMetrics()
        self.upload_max_bytes = upload_max_bytes
        self.service = service
        self.consumer = consumer
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.progress_interval_s = progress_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs_lock = threading.Lock()
        self._finished_runs: set[str] = set()
        self._watchers: dict[str, Any] = {}  # run id → the WatchTask call, to cancel it

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="slack-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the notification in hand (it is acked, not abandoned)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._runs_lock:
            for call in self._watchers.values():
                call.cancel()
            self._watchers.clear()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self.health.token_error:
                self._wait_for_a_working_token()
                continue
            try:
                busy = self.run_once()
                failures = 0
            except grpc.RpcError as exc:
                failures += 1
                log.warning("notification service unreachable (%s); retrying", exc.code())
                busy = False
            except Exception:
                failures += 1
                log.exception("delivery loop failed; retrying")
                busy = False
            if not busy:
                self._stop.wait(min(self.poll_interval_s * (2 ** min(failures, 5)), 30.0))

    def _wait_for_a_working_token(self) -> None:
        if self._stop.wait(self.token_check_interval_s):
            return
        try:
            self.client.auth_test()
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in TOKEN_ERRORS:
                self.health.token_refused(error)
            return
        except OSError:
            return  # Slack out of reach: ask again later
        log.info("Slack accepts the bot token again; delivering the waiting notifications")
        self.health.token_works()

    def run_once(self) -> bool:
        """Deliver one notification if there is one; True when one was handled."""
        pulled = self.service.pull(self.consumer, 1, self.lease_s)
        for n in pulled:
            self.deliver(n)
        return bool(pulled)

    # -- one notification ----------------------------------------------------------------

    def deliver(self, n: npb.Notification) -> None:
        started = time.perf_counter()
        outcome = self._deliver(n)
        self.metrics.delivered(n.kind, outcome, time.perf_counter() - started)

    def _deliver(self, n: npb.Notification) -> str:
        """Deliver and ack one notification; the outcome for the metrics."""
        d = _Delivering(n, {r.purpose: r for r in n.refs})
        extra = {"task_id": n.task_id, "run_id": n.run_id, "notification": n.id, "kind": n.kind}
        try:
            self._render(d)
        except TokenRefused as exc:
            log.error(
                "Slack refuses the bot token (%s): delivery paused until it works; "
                "the notifications wait in the outbox",
                exc.error,
                extra=extra,
            )
            self.health.token_refused(exc.error)
            # Released at once, so a bot with a working token can deliver it.
            self.service.ack(
                n.id, self.consumer, delivered=False, error=str(exc), refs=d.posted, retry_after_s=1
            )
            return "token_refused"
        except Retry as exc:
            log.warning("delivery failed, will retry: %s", exc, extra=extra)
            self.service.ack(
                n.id,
                self.consumer,
                delivered=False,
                error=str(exc),
                refs=d.posted,
                retry_after_s=exc.after_s,
            )
            return "retry"
        except grpc.RpcError as exc:
            log.warning("delivery needs the service, will retry: %s", exc.code(), extra=extra)
            self.service.ack(
                n.id, self.consumer, delivered=False, error=f"service: {exc.code()}", refs=d.posted
            )
            return "retry"
        except OSError as exc:  # Slack unreachable (refused, reset, timed out): back off too
            reason = getattr(exc, "reason", None) or exc
            log.warning("slack unreachable, will retry: %s", reason, extra=extra)
            self.service.ack(
                n.id, self.consumer, delivered=False, error=f"slack: {reason}", refs=d.posted
            )
            return "retry"
        if not self.service.ack(
            n.id, self.consumer, delivered=True, error="; ".join(d.problems), refs=d.posted
        ):
            log.warning("lease lost before the ack; another consumer delivers it", extra=extra)
            return "lease_lost"
        log.info("notification delivered", extra=extra)
        return "delivered"

    def _render(self, d: _Delivering) -> None:
        n, task = d.n, d.n.task
        kind = n.kind
        if kind in APPROVAL_KINDS:
            self._approval(d)
        if kind in DECISIONS and not (kind == "canceled" and n.actor == task.submitter):
            self._put(d, "decision", task.submitter, decision_dm(task, n.events))
        if kind == "approved" and task.schedule.trigger != pb.TRIGGER_KIND_CRON:
            mode = imports.executor_of(task)
            if mode in (pb.EXEC_COMMITTER, pb.EXEC_APPROVER):
                who = task.submitter if mode == pb.EXEC_COMMITTER else n.actor
                self._put(d, "execute", who, execute_prompt(task))
        if kind == "run_started" and n.run_id:
            if "execute" in d.refs:
                self._put(
                    d, "execute", "", execute_prompt(task, started_by=n.actor, run_id=n.run_id)
                )
            if n.run.status in RUN_DONE:  # finished before this was delivered
                self._finish_run(d)
            else:
                msg = run_message(task, n.run)
                self._put_run(d, msg)
                self._watch(task, n.run, d.refs.get(f"run:{n.run_id}"))
        if kind == "run_finished" and n.run_id:
            self._finish_run(d)

    def _approval(self, d: _Delivering) -> None:
        n, task = d.n, d.n.task
        # An import's or a generation's approvers see what they approve: the first rows.
        preview = None
        if imports.is_write(task):
            preview = self.service.detail(task.submitter, task.id).preview
        msg = approval_message(task, n.events, n.required_approvals, preview)
        if not n.approval_channel:
            if n.kind == "approval_requested":
                self._report(d, "", "no approval channel is configured")
            return
        try:
            self._put(d, "approval", n.approval_channel, msg)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error not in CHANNEL_ERRORS:
                raise self._retry(exc) from None
            self._report(d, n.approval_channel, error)

    def _report(self, d: _Delivering, where: str, error: str) -> None:
        """Tell the requester that the approval request could not be posted, once."""
        d.problems.append(f"approval request not posted to {where or '(none)'}: {error}")
        if "problem:approval" not in d.refs:
            self._put(
                d, "problem:approval", d.n.task.submitter, delivery_problem(d.n.task, where, error)
            )

    def _put_run(self, d: _Delivering, msg: dict[str, Any]) -> None:
        """Post or update the run's message where it goes; a schedule channel the bot cannot
        post to is reported to the task's owner, with the result, instead of retried."""
        task, purpose = d.n.task, f"run:{d.n.run_id}"
        where = self._run_destination(task)
        if where == task.submitter or purpose in d.refs:
            self._put(d, purpose, where, msg)
            return
        try:
            self._put(d, purpose, where, msg, channel_errors=True)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            d.problems.append(f"run {d.n.run_id} not posted to {where}: {error}")
            self._put(
                d, f"problem:{purpose}", task.submitter, schedule_problem(task, where, error, msg)
            )

    def _share_file(self, d: _Delivering, link: Link, size: int) -> None:
        """Upload a small scheduled result to its channel, once, where the workspace allows
        uploads; the link is already posted, so a refusal is noted, not retried."""
        purpose = f"file:{d.n.run_id}"
        if purpose in d.refs or not 0 < size <= self.upload_max_bytes:
            return
        where = self._run_destination(d.n.task)
        try:
            with urllib.request.urlopen(link.url, timeout=60) as resp:  # the service's own link
                content = resp.read(self.upload_max_bytes + 1)
        except OSError as exc:
            d.problems.append(f"file of run {d.n.run_id} not shared: {exc}")
            return
        try:
            resp = self.client.files_upload_v2(
                channel=where, content=content, filename=link.filename, title=link.filename
            )
        except SlackApiError as exc:
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise self._retry(exc) from None
            error = exc.response.get("error", "")
            log.info("file of run %s not uploaded: %s", d.n.run_id, error)
            d.problems.append(f"file of run {d.n.run_id} not uploaded to {where}: {error}")
            file_id = "refused"  # remembered too: the run's other notification won't ask again
        else:
            uploaded = resp.get("file") or (resp.get("files") or [{}])[0]
            file_id = str(uploaded.get("id") or "uploaded")
        ref = npb.MessageRef(channel=where, ts=file_id, purpose=purpose)
        self.service.save_refs(d.n.task_id, [ref])
        d.refs[purpose] = ref
        d.posted.append(ref)

    def _run_destination(self, task: pb.TaskListData) -> str:
        if task.schedule.trigger == pb.TRIGGER_KIND_CRON and task.schedule.channel:
            return task.schedule.channel
        return task.submitter

    def _finish_run(self, d: _Delivering) -> None:
        n, task, run = d.n, d.n.task, d.n.run
        with self._runs_lock:
            self._finished_runs.add(n.run_id)  # the progress watcher stops updating
            call = self._watchers.pop(n.run_id, None)
        if call is not None:
            call.cancel()
        link, problem = None, ""
        has_file = not imports.is_write(task) or run.backup_filename
        if run.status == pb.TASK_STATUS_EXECUTE_SUCCESS and has_file:
            try:
                got = self.service.download_url(task.submitter, n.task_id, n.run_id)
                link = Link(got.url, as_datetime(got.expire_time), got.filename)
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                problem = f"No link: {exc.details()}"
        msg = run_message(task, run, link=link, link_problem=problem)
        with self._runs_lock:
            self._put_run(d, msg)
        scheduled = task.schedule.trigger == pb.TRIGGER_KIND_CRON and task.schedule.channel
        if scheduled and link is not None:
            self._share_file(d, link, run.bytes)
        if scheduled and run.status != pb.TASK_STATUS_EXECUTE_SUCCESS:
            # A scheduled report that did not come is news for its owner, not only the channel.
            self._put(d, f"run:{n.run_id}:owner", task.submitter, msg)

    # -- posting -------------------------------------------------------------------------

    def _put(
        self,
        d: _Delivering,
        purpose: str,
        channel: str,
        msg: dict[str, Any],
        *,
        channel_errors: bool = False,
    ) -> None:
        """Update the purpose's message when there is one, else post it and record it.
        With `channel_errors`, a channel that cannot take it raises SlackApiError for the
        caller to report; every other failure is a Retry."""
        ref = d.refs.get(purpose)
        if ref is not None:
            try:
                self.client.chat_update(channel=ref.channel, ts=ref.ts, **msg)
                d.posted.append(ref)
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise self._retry(exc) from None
                log.info("message %s was deleted; posting it again", purpose)
        if not channel:
            return
        try:
            resp = self.client.chat_postMessage(channel=channel, **msg)
        except SlackApiError as exc:
            if (purpose == "approval" or channel_errors) and exc.response.get(
                "error"
            ) in CHANNEL_ERRORS:
                raise
            raise self._retry(exc) from None
        ref = npb.MessageRef(channel=resp["channel"], ts=resp["ts"], purpose=purpose)
        # Recorded before anything else happens: a crash from here on updates, never reposts.
        self.service.save_refs(d.n.task_id, [ref])
        d.refs[purpose] = ref
        d.posted.append(ref)

    @staticmethod
    def _retry(exc: SlackApiError) -> Retry:
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) or f"HTTP {status}"
        if error in TOKEN_ERRORS:
            return TokenRefused(error)
        after = 0
        if status == 429:
            try:
                after = int(exc.response.headers.get("Retry-After", "1"))
            except (TypeError, ValueError):
                after = 1
        return Retry(f"slack: {error}", after)

    # -- progress ------------------------------------------------------------------------

    def _watch(self, task: pb.TaskListData, run: pb.TaskRun, ref: npb.MessageRef | None) -> None:
        if ref is None or self._stop.is_set():
            return
        call = self.service.watch(task.submitter, task.id)
        with self._runs_lock:
            if run.id in self._finished_runs:
                call.cancel()
                return
            self._watchers[run.id] = call
        threading.Thread(
            target=self._follow,
            args=(task, run, ref, call),
            name=f"progress-{run.id}",
            daemon=True,
        ).start()

    def _follow(
        self, task: pb.TaskListData, run: pb.TaskRun, ref: npb.MessageRef, call: Any
    ) -> None:
        """Update the run's message with rows so far, at most once per interval."""
        last_sent = 0.0
        last_rows = -1
        try:
            for p in call:
                if p.run_id and p.run_id != run.id:
                    break
                if p.status != pb.TASK_STATUS_EXECUTING:
                    break
                now = time.monotonic()
                if p.rows == last_rows or now - last_sent < self.progress_interval_s:
                    continue
                self._progress_update(task, run, ref, p.rows)
                last_sent, last_rows = now, p.rows
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                log.info("progress watch ended: %s", exc.code(), extra={"run_id": run.id})
        finally:
            with self._runs_lock:
                if self._watchers.get(run.id) is call:
                    del self._watchers[run.id]

    def _progress_update(
        self, task: pb.TaskListData, run: pb.TaskRun, ref: npb.MessageRef, rows: int
    ) -> None:
        with self._runs_lock:  # never after the result: the result owns the message then
            if run.id in self._finished_runs:
                return
            try:
                self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, **run_message(task, run, rows_so_far=rows)
                )
            except SlackApiError as exc:  # progress is best effort; the result is not
                log.info("progress update skipped: %s", exc.response.get("error"))
            except OSError as exc:  # Slack out of reach: the next update or the result follows
                log.info("progress update skipped: %s", getattr(exc, "reason", None) or exc)
