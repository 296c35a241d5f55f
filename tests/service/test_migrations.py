"""The Alembic migrations build exactly the schema the models describe, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.store.models import Base
from service.store.repository import TaskStore


def test_migrations_match_the_models(store_url: str) -> None:
    store = TaskStore(store_url)
    try:
        store.migrate()
        store.migrate()  # idempotent: a restart applies nothing twice
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
    finally:
        store.close()
