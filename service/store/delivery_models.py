"""Delivery bookkeeping of the notification outbox: the chat messages posted for a task.

The lease and retry columns live on `notifications` itself (migration 0002) so that a claim
is one conditional UPDATE of the row; the messages are a table of their own because a task
has several (the approval request, decisions, one progress/result message per run).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.store.models import Base, BigId, UtcDateTime, utcnow


class MessageRefRow(Base):
    """One chat message posted for a task; later notifications update it in place."""

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
