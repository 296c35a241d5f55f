"""Engine set-up and migrations for the task store."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

_ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
WRITE_OPTION = "woxqaq_write"
MIGRATION_LOCK_ID = 0x776F7871  # "woxq": the advisory lock that serialises migrations


def create_store_engine(url: str) -> Engine:
    """An engine for the task store; on SQLite, write transactions take the lock up front.

    SQLite's deferred BEGIN lets two writers both read and then fail to upgrade their lock
    (SQLITE_BUSY at once, no waiting); BEGIN IMMEDIATE on write units of work makes them
    queue instead, which is what "two clicks at the same moment count once" needs.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True, hide_parameters=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the task store's schema to the newest migration (run at every start)."""
    cfg = AlembicConfig(str(_ALEMBIC_INI))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together on a new store: one migrates, the others wait for
            # its commit and then find the schema at head (the lock ends with the transaction).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
