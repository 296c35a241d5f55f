"""Alembic environment: migrations run on the connection the service hands over at start.

`alembic -c service/store/alembic.ini revision --autogenerate -m "..."` works too, against
the URL in WOXQAQ_TASK_STORE_URL.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from service.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = os.environ.get("WOXQAQ_TASK_STORE_URL", "sqlite:///.woxqaq/tasks.db")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        _migrate(conn)
    engine.dispose()


def _migrate(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
