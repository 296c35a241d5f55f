"""What a user may know about the datasources: their settings, whether they answer, their tables.

Visibility is the task service's: under `server.restrict_visibility` a user sees only the
datasources they approve or view, and the others do not exist for them.
"""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from service.config import Config
from service.datasources import Datasource, DatasourceRegistry, describe_db_error
from service.domain.errors import NotFound

# A reachability check waits at most this long for all datasources together.
REACHABLE_WAIT_S = 5.0


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    reason: str = ""  # why not, in one line without secrets


@dataclass(frozen=True)
class DatasourceView:
    name: str
    dialect: str
    approvers: tuple[str, ...]
    approval_channel: str
    required_approvals: int
    description: str
    default_database: str
    audit_findings: tuple[str, ...]
    reachability: Reachability | None  # None: not checked


@dataclass(frozen=True)
class TableView:
    name: str
    columns: tuple[str, ...]


class Catalog:
    def __init__(self, config: Config, registry: DatasourceRegistry) -> None:
        self.registry = registry
        self.descriptions = {name: ds.description for name, ds in config.datasources.items()}

    def datasources(self, user: str, *, check_reachable: bool = False) -> list[DatasourceView]:
        shown = self._visible(user)
        checked = self._reachability(shown) if check_reachable else {}
        return [
            DatasourceView(
                name=ds.name,
                dialect=ds.backend,
                approvers=tuple(sorted(ds.approvers)),
                approval_channel=ds.approval_channel,
                required_approvals=ds.required_approvals,
                description=self.descriptions.get(ds.name, ""),
                default_database=ds.default_database(),
                audit_findings=self.registry.audit_findings(ds),
                reachability=checked.get(ds.name),
            )
            for ds in shown
        ]

    def tables(self, user: str, dsn: str, database: str) -> tuple[str, list[TableView]]:
        """The database listed (the default one when `database` is empty) and its tables."""
        ds = self._visible_one(user, dsn.strip())
        database = database.strip() or ds.default_database()
        schema = self.registry.schema(ds, database)
        return database, [TableView(name, tuple(cols)) for name, cols in sorted(schema.items())]

    def _visible(self, user: str) -> list[Datasource]:
        visible = self.registry.visible_to(user)
        return [ds for ds in self.registry.all() if visible is None or ds.name in visible]

    def _visible_one(self, user: str, name: str) -> Datasource:
        shown = {ds.name: ds for ds in self._visible(user)}
        if name not in shown:
            choices = ", ".join(sorted(shown)) or "none is visible to you"
            what = f"datasource {name!r} does not exist" if name else "dsn is empty"
            raise NotFound(f"{what}; choose one of: {choices}")
        return shown[name]

    def _reachability(self, datasources: list[Datasource]) -> dict[str, Reachability]:
        """Each datasource connected to at once; one that has not answered in time is
        reported as such (its attempt finishes in the background)."""
        pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="reachable")
        try:
            pending = {pool.submit(self._reach, ds): ds.name for ds in datasources}
            done, late = futures.wait(pending, timeout=REACHABLE_WAIT_S)
            result = {pending[f]: f.result() for f in done}
            for f in late:
                result[pending[f]] = Reachability(False, f"no answer within {REACHABLE_WAIT_S:g} s")
            return result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _reach(self, ds: Datasource) -> Reachability:
        if ds.backend == "sqlite":  # connecting would create a missing file
            path = ds.url.database or ""
            if path and path != ":memory:" and not Path(path).is_file():
                return Reachability(False, f"the database file {path} does not exist")
        try:
            with self.registry.engine(ds).connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any driver error: reported, never raised to the caller
            return Reachability(False, describe_db_error(exc))
        return Reachability(True)
