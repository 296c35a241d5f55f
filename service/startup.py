"""Start-up checks: the task store and the object store are proven usable before the service
takes a call, so a wrong setting stops start-up with one line naming the key and the fix
instead of failing the first export ("NoSuchBucket" an hour later).

Each failure is a ConfigError: `python -m service` prints it and exits 2.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.config import Config, ConfigError
from service.datasources import describe_db_error
from service.domain.errors import Unavailable
from service.storage.base import ObjectStore
from service.storage.factory import build_object_store
from service.store.repository import TaskStore

# Where the object-store check writes its probe (removed at once); never an export's key.
PROBE_PREFIX = ".woxqaq-start-check"

_MISSING_DATABASE = re.compile(r'database "([^"]+)" does not exist|Unknown database \'([^\']+)\'')


def open_task_store(config: Config) -> TaskStore:
    """The task store at `task_store.url`, connected and migrated to the newest schema."""
    url = config.task_store_url
    shown = make_url(url).render_as_string(hide_password=True)
    store: TaskStore | None = None
    try:
        store = TaskStore(url)
        store.migrate()
    except (sa.exc.SQLAlchemyError, OSError, ImportError) as exc:
        if store is not None:
            store.close()
        raise ConfigError(f"config key task_store.url: {_task_store_problem(shown, exc)}") from None
    return store


def _task_store_problem(shown: str, exc: BaseException) -> str:
    reason = describe_db_error(exc) if isinstance(exc, sa.exc.SQLAlchemyError) else str(exc)
    missing = _MISSING_DATABASE.search(reason)
    if missing:
        name = missing.group(1) or missing.group(2)
        return (
            f"the task store database {name!r} does not exist at {shown}; create it "
            f"(PostgreSQL: createdb {name}; MySQL: CREATE DATABASE {name}) or point "
            "task_store.url at an existing one"
        )
    if isinstance(exc, ImportError | sa.exc.ArgumentError | sa.exc.NoSuchModuleError):
        return f"{shown} names a driver that is not installed ({reason}); use e.g. postgresql+psycopg://"
    return (
        f"cannot open the task store at {shown}: {reason}; check that the database server "
        "runs and that task_store.url, its user and password are right"
    )


def open_object_store(config: Config) -> ObjectStore:
    """The configured object store, proven writable: a small object is written and deleted
    again, as every export and the retention sweep will (the bucket or directory exists, the
    service may write and delete there)."""
    key = f"{PROBE_PREFIX}-{uuid.uuid4().hex}"  # top level: no folder is left behind
    objects: ObjectStore | None = None
    try:
        objects = build_object_store(config)
        with objects.open_writer(key, filename="check.txt", content_type="text/plain") as out:
            out.write(b"woxqaq start-up check\n")
        objects.delete(key)
    except (Unavailable, OSError) as exc:
        if objects is not None:
            objects.close()
        raise ConfigError(_object_store_problem(config, exc)) from None
    return objects


def _object_store_problem(config: Config, exc: Exception) -> str:
    if config.storage.backend == "s3":  # the message names the bucket, endpoint and the fix
        return f"config key storage.s3.bucket: {exc}"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (
        f"config key storage.local.dir: cannot write to {config.local_store_dir}: {reason}; "
        "point storage.local.dir (or server.data_dir) at a directory the service may write"
    )


def prepare_data_dir(config: Config) -> None:
    try:
        config.server.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"config key server.data_dir: cannot create {config.server.data_dir}: "
            f"{exc.strerror or exc}; point it at a directory the service may write"
        ) from None
