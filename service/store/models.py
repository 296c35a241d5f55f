"""Typed ORM models of the task store. The same code runs on SQLite and PostgreSQL.

Enum columns hold the domain enums' numbers (equal to the wire's); the export spec is JSON
because it is read and written whole, never queried into.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; elsewhere ids are 64-bit like the wire's.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the task store; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[int] = mapped_column(SmallInteger)
    datasource: Mapped[str] = mapped_column(String(200))
    database: Mapped[str] = mapped_column(String(200), default="")
    submitter: Mapped[str] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(SmallInteger)
    executor_mode: Mapped[int] = mapped_column(SmallInteger)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    trigger: Mapped[int] = mapped_column(SmallInteger, default=1)
    cron: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    channel: Mapped[str] = mapped_column(String(64), default="")
    # The quorum as configured when the task was submitted: a later config change does not
    # move the goalposts of a vote in progress.
    required_approvals: Mapped[int] = mapped_column(SmallInteger, default=1)
    precheck_messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What approvers see before they vote (TaskPreview): an import's first rows and file
    # digest, a generation's first rows, an export's row estimate. Migration 0003.
    preview: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # ListTaskDetail filters by these and pages newest first (id descending).
    __table_args__ = (
        Index("ix_tasks_submitter_id", "submitter", "id"),
        Index("ix_tasks_status_id", "status", "id"),
        Index("ix_tasks_datasource_status_id", "datasource", "status", "id"),
    )


class VoteRow(Base):
    """One approver's decision on one task; the unique key makes a double click count once."""

    __tablename__ = "task_votes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(200))
    approve: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("task_id", "voter", name="uq_task_votes_task_voter"),
        Index("ix_task_votes_voter_task", "voter", "task_id"),
    )


class EventRow(Base):
    """The audit trail: every decision and happening, with who and when."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The authenticated principal that made the call, when it is not `actor` itself (the
    # bot acting for a Slack user). Migration 0003.
    principal: Mapped[str] = mapped_column(String(200), default="", server_default="")


class RunRow(Base):
    """One execution of a task (a scheduled task has one per firing)."""

    __tablename__ = "task_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    status: Mapped[int] = mapped_column(SmallInteger)
    executor: Mapped[str] = mapped_column(String(200))
    # For a scheduled run, the firing it belongs to; unique so two replicas cannot both run it.
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    start_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str] = mapped_column(String(255), default="")
    object_key: Mapped[str] = mapped_column(String(1024), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    # Imports and generations (migration 0003): `rows` counts rows written; these count the
    # rows left alone and updated, and name the backup of the rows an UPSERT replaced.
    rows_skipped: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_updated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    backup_filename: Mapped[str] = mapped_column(String(255), default="", server_default="")
    backup_object_key: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    # Which service process runs it and when it last said so: a run whose owner stopped
    # beating is failed on recovery instead of staying EXECUTING for ever.
    owner: Mapped[str] = mapped_column(String(200), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_task_runs_task_id", "task_id", "id"),
        Index("ix_task_runs_executor", "executor", "task_id"),
        UniqueConstraint("task_id", "scheduled_for", name="uq_task_runs_firing"),
    )


class NotificationRow(Base):
    """The outbox: what people must be told, written in the same transaction as the change."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Delivery lease and back-off (migration 0002), claimed by UPDATE … WHERE
    # (`Tx.lease_notification`) so two bot replicas never take the same row.
    leased_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_notifications_pending", "delivered_at", "id"),
        Index("ix_notifications_task_pending", "task_id", "delivered_at", "id"),
    )


class MessageRefRow(Base):
    """One chat message posted for a task; later notifications update it in place.

    The outbox's lease and retry columns live on `notifications` itself so that a claim is
    one conditional UPDATE of the row; the messages are a table of their own because a task
    has several (the approval request, decisions, one progress/result message per run).
    """

    __tablename__ = "notification_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # One message per purpose: a second post for the same purpose would be a duplicate.
    __table_args__ = (
        UniqueConstraint("task_id", "purpose", name="uq_notification_messages_task_purpose"),
        Index("ix_notification_messages_task", "task_id"),
    )
