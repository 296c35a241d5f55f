"""second release: task previews, run write counts and backups, event principals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preview", sa.JSON(), nullable=True))
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("principal", sa.String(length=200), server_default="", nullable=False)
        )
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rows_skipped", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rows_updated", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("backup_filename", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "backup_object_key", sa.String(length=1024), server_default="", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_column("backup_object_key")
        batch_op.drop_column("backup_filename")
        batch_op.drop_column("rows_updated")
        batch_op.drop_column("rows_skipped")
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.drop_column("principal")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("preview")
