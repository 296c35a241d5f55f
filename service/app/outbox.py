"""The notification outbox's delivery side: lease, acknowledge, remember posted messages.

Use cases write notifications in the same transaction as the change they announce
(`Tx.notify`); a consumer such as the Slack bot pulls them here. Delivery is at least once:
a claimed notification is leased to one consumer, and a consumer that dies lets its lease
lapse so another one takes it over. Messages are posted once: the consumer records each
message it posts (`save_refs`) and a later delivery for the same purpose updates it.

Here is the policy (batch sizes, lease times, back-off, when to give up); the repository's
conditional UPDATEs (`Tx.lease_notification`, `Tx.deliver_notification`) make sure that of
two consumers racing for a row, exactly one wins it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.datasources import DatasourceRegistry
from service.domain.errors import InvalidRequest, NotFound
from service.domain.model import Event, MessageRef, Run, Task
from service.metrics import Metrics
from service.store.repository import TaskStore, Tx

log = logging.getLogger(__name__)

DEFAULT_BATCH = 20
MAX_BATCH = 100
DEFAULT_LEASE_S = 60
MIN_LEASE_S, MAX_LEASE_S = 5, 3600
MAX_ATTEMPTS = 12  # about a day of exponential back-off before giving up
MAX_ID = 2**63 - 1
MAX_BACKOFF_S = 3600
MAX_REFS = 50


@dataclass(frozen=True)
class Pending:
    """A leased notification with everything a consumer needs to render it."""

    id: int
    kind: str
    task_id: int
    run_id: int | None
    actor: str
    created_at: datetime
    attempts: int
    refs: tuple[MessageRef, ...]
    task: Task
    run: Run | None
    events: tuple[Event, ...]
    approval_channel: str
    required_approvals: int


@dataclass(frozen=True)
class DatasourceInfo:
    name: str
    description: str
    approval_channel: str
    required_approvals: int
    approvers: tuple[str, ...]
    default_database: str


def backoff_s(attempts: int) -> int:
    """Seconds before retry number `attempts`: 2, 4, 8 … capped at an hour."""
    return int(min(2 ** max(attempts, 1), MAX_BACKOFF_S))


class Outbox:
    def __init__(
        self,
        store: TaskStore,
        registry: DatasourceRegistry,
        *,
        descriptions: dict[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.registry = registry
        self.descriptions = descriptions or {}
        self.clock = clock

    # -- pull ----------------------------------------------------------------------------

    def pull(self, consumer: str, max_items: int = 0, lease_s: int = 0) -> list[Pending]:
        """Lease up to `max_items` notifications to `consumer`, the oldest of each task only:
        a task's notifications are delivered in order, the next once the previous is acked."""
        consumer = _consumer(consumer)
        limit = min(max_items or DEFAULT_BATCH, MAX_BATCH)
        if max_items < 0 or lease_s < 0:
            raise InvalidRequest("max and lease_seconds must not be negative; 0 means the default")
        lease = timedelta(seconds=min(max(lease_s or DEFAULT_LEASE_S, MIN_LEASE_S), MAX_LEASE_S))
        now = self.clock()
        with self.store.write() as tx:
            claimed = [
                nid
                for nid in tx.claimable_notifications(now, limit)
                if tx.lease_notification(nid, consumer, now=now, until=now + lease)
            ]
        return self._load(claimed)

    def _load(self, ids: Sequence[int]) -> list[Pending]:
        out: list[Pending] = []
        if not ids:
            return out
        with self.store.read() as tx:
            for row in tx.notifications(ids):
                try:
                    task = tx.get_task(row.task_id)
                except NotFound:  # deleted since; nothing to say about it
                    continue
                run = None
                if row.run_id is not None:
                    try:
                        run = tx.get_run(row.run_id)
                    except NotFound:
                        run = None
                try:
                    ds = self.registry.get(task.datasource)
                    channel, quorum = ds.approval_channel, ds.required_approvals
                except NotFound:  # removed from the config since the task was submitted
                    channel, quorum = "", task.required_approvals
                out.append(
                    Pending(
                        id=row.id,
                        kind=row.kind,
                        task_id=row.task_id,
                        run_id=row.run_id,
                        actor=row.actor,
                        created_at=row.created_at,
                        attempts=row.attempts,
                        refs=tuple(tx.message_refs(row.task_id)),
                        task=task,
                        run=run,
                        events=tuple(tx.events(row.task_id)),
                        approval_channel=channel,
                        required_approvals=task.required_approvals or quorum,
                    )
                )
        return out

    # -- ack -----------------------------------------------------------------------------

    def ack(
        self,
        notification_id: int,
        consumer: str,
        *,
        delivered: bool,
        error: str = "",
        refs: Sequence[MessageRef] = (),
        retry_after_s: int = 0,
    ) -> bool:
        """Record the outcome of a delivery; False when `consumer` no longer holds the lease
        (another consumer took the notification over and will deliver it)."""
        consumer = _consumer(consumer)
        if notification_id <= 0:
            raise InvalidRequest("id is missing; give the notification's id from Pull")
        if notification_id > MAX_ID:  # beyond BIGINT: no such row, and no query can ask
            raise NotFound(f"notification {notification_id} does not exist")
        now = self.clock()
        with self.store.write() as tx:
            row = tx.notification(notification_id)  # NotFound for an unknown id
            if refs:
                self._save_refs(tx, row.task_id, refs, now)
            error = error[:2000]
            if delivered:
                outcome = "delivered"
                held = tx.deliver_notification(notification_id, consumer, now=now, error=error)
            else:
                outcome = "failed"
                attempts = row.attempts + 1
                if attempts >= MAX_ATTEMPTS:
                    outcome = "given_up"
                    # Give up so the task's later notifications are not held back for ever.
                    log.error(
                        "notification given up after %d attempts: %s",
                        attempts,
                        error,
                        extra={"task_id": row.task_id, "notification_id": notification_id},
                    )
                    held = tx.deliver_notification(
                        notification_id,
                        consumer,
                        now=now,
                        error=f"given up: {error}"[:2000],
                        attempts=attempts,
                    )
                else:
                    wait = retry_after_s if retry_after_s > 0 else backoff_s(attempts)
                    held = tx.retry_notification(
                        notification_id,
                        consumer,
                        now=now,
                        error=error,
                        attempts=attempts,
                        next_attempt_at=now + timedelta(seconds=min(wait, MAX_BACKOFF_S)),
                    )
        if held:  # committed; an ack of a lease lost counts nothing: the holder's will
            self.metrics.outbox_acks.labels(outcome).inc()
        return held

    def save_refs(self, task_id: int, refs: Sequence[MessageRef]) -> None:
        with self.store.write() as tx:
            tx.get_task(task_id)  # NotFound for an unknown task
            self._save_refs(tx, task_id, refs, self.clock())

    @staticmethod
    def _save_refs(tx: Tx, task_id: int, refs: Sequence[MessageRef], now: datetime) -> None:
        if len(refs) > MAX_REFS:
            raise InvalidRequest(f"{len(refs)} message refs given; the limit is {MAX_REFS}")
        for ref in refs:
            if not ref.channel or not ref.ts or not ref.purpose:
                raise InvalidRequest("a message ref needs channel, ts and purpose")
            for value, what in ((ref.channel, "channel"), (ref.ts, "ts"), (ref.purpose, "purpose")):
                if len(value) > 64:
                    raise InvalidRequest(f"message ref {what} is longer than 64 characters")
            tx.save_message_ref(task_id, ref, now)

    # -- datasources ---------------------------------------------------------------------

    def datasources(self) -> list[DatasourceInfo]:
        return [
            DatasourceInfo(
                name=ds.name,
                description=self.descriptions.get(ds.name, ""),
                approval_channel=ds.approval_channel,
                required_approvals=ds.required_approvals,
                approvers=tuple(sorted(ds.approvers)),
                default_database=ds.default_database(),
            )
            for ds in self.registry.all()
        ]


def _consumer(consumer: str) -> str:
    consumer = consumer.strip()
    if not consumer:
        raise InvalidRequest("consumer is empty: name the process that delivers")
    if len(consumer) > 200:
        raise InvalidRequest("consumer is longer than 200 characters")
    return consumer
