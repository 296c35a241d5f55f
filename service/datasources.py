"""The datasource registry: names from the config mapped to databases users may export from.

A `Datasource` carries the SQLAlchemy URL with its password; only `safe_url` (password
hidden) may ever reach a message or a log line.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pymysql.constants import CLIENT
from sqlalchemy.engine import URL, Engine, make_url

from service.config import DEMO_DATASOURCE, Config, ConfigError
from service.dbcheck.audit import ReaderAudit, audit_reader
from service.domain.errors import InvalidRequest, NotFound, Unavailable

log = logging.getLogger(__name__)

# SQLAlchemy backend name -> sqlglot dialect name
_SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}


@dataclass(frozen=True)
class Datasource:
    name: str
    url: URL
    approvers: frozenset[str] = frozenset()
    approval_channel: str = ""
    required_approvals: int = 1
    statement_timeout_s: int = 300
    viewers: frozenset[str] = frozenset()
    # The writer credentials of imports and generations; None: no writes here.
    write_url: URL | None = None
    writable_tables: tuple[str, ...] = ()
    allow_generate: bool = False
    allowed_functions: frozenset[str] = frozenset()
    allow_privileged_reader: bool = False
    timezone: str = "UTC"  # IANA name, checked by the config

    @property
    def backend(self) -> str:
        """'sqlite', 'postgresql' or 'mysql' (MariaDB included)."""
        name = self.url.get_backend_name()
        return "mysql" if name == "mariadb" else name

    @property
    def sqlglot_dialect(self) -> str:
        return _SQLGLOT_DIALECTS[self.url.get_backend_name()]

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def default_database(self) -> str:
        """The schema `database` means when a request leaves it empty."""
        if self.backend == "postgresql":
            return "public"
        if self.backend == "mysql":
            return self.url.database or ""
        return "main"

    def __repr__(self) -> str:  # dataclass repr would print the password
        return f"Datasource(name={self.name!r}, url={self.safe_url!r})"


# The one driver each backend's export and load paths are written for (psycopg's COPY and
# named cursors, PyMySQL's unbuffered cursor and wire). A URL without one, as people copy
# it from libpq or a MySQL client (`postgresql://…`, `mysql://…`), gets it.
_DRIVERS = {
    "sqlite": "pysqlite",
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "mariadb": "pymysql",
}


def _with_driver(url: URL, where: str) -> URL:
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise InvalidRequest(
            f"{where}: the {backend!r} dialect is not supported; "
            "use SQLite, PostgreSQL or MySQL/MariaDB"
        )
    driver = _DRIVERS[backend]
    if "+" not in url.drivername:
        return url.set(drivername=f"{backend}+{driver}")
    if url.get_driver_name() != driver:
        raise InvalidRequest(
            f"{where}: the {url.get_driver_name()!r} driver is not supported for {backend}; "
            f"write {backend}+{driver}:// or {backend}://"
        )
    return url


def _config_url(url: URL, key: str) -> URL:
    try:
        return _with_driver(url, key)
    except InvalidRequest as exc:  # a setting, not a request: start-up stops naming the key
        raise ConfigError(str(exc)) from None


class DatasourceRegistry:
    """Resolves `dsn` values to datasources and keeps one engine per datasource."""

    def __init__(self, config: Config) -> None:
        self._allow_raw = config.server.allow_raw_dsn
        self._restrict_visibility = config.server.restrict_visibility
        self._default_timeout = config.export.statement_timeout_s
        self._by_name: dict[str, Datasource] = {}
        for name, ds in config.datasources.items():
            url = make_url(ds.url)
            if ds.password:
                url = url.set(password=ds.password)
            url = _config_url(url, f"config key datasources.{name}.url")
            write_url = make_url(ds.write_url) if ds.write_url else None
            if write_url is not None:
                if ds.write_password:
                    write_url = write_url.set(password=ds.write_password)
                write_url = _config_url(write_url, f"config key datasources.{name}.write_url")
            self._by_name[name] = Datasource(
                name=name,
                url=url,
                approvers=frozenset(ds.approvers),
                approval_channel=ds.approval_channel,
                required_approvals=ds.required_approvals,
                statement_timeout_s=ds.statement_timeout_s or self._default_timeout,
                viewers=frozenset(ds.viewers),
                write_url=write_url,
                writable_tables=ds.writable_tables,
                allow_generate=ds.allow_generate,
                allowed_functions=frozenset(ds.allowed_functions),
                allow_privileged_reader=ds.allow_privileged_reader,
                timezone=ds.timezone,
            )
        if config.embedded:
            self._by_name[DEMO_DATASOURCE] = Datasource(
                name=DEMO_DATASOURCE,
                url=make_url(f"sqlite:///{config.demo_database_path.resolve()}"),
                approvers=frozenset(config.demo.approvers),
                approval_channel=config.demo.approval_channel,
                statement_timeout_s=self._default_timeout,
            )
        self._engines: dict[str, Engine] = {}
        self._audits: dict[str, ReaderAudit] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Datasource]:
        return [self._by_name[n] for n in self.names()]

    def visible_to(self, user: str) -> frozenset[str] | None:
        """Names of the datasources `user` approves or views under `server.restrict_visibility`;
        None when visibility is not restricted (everyone sees everything)."""
        if not self._restrict_visibility:
            return None
        return frozenset(ds.name for ds in self.all() if user in ds.viewers or user in ds.approvers)

    def audit_findings(self, ds: Datasource) -> tuple[str, ...]:
        """What an audit of the reader's privileges found wrong with `ds` (one line each);
        empty while no audit has run (this never starts one) or when it found nothing."""
        with self._lock:
            known = self._audits.get(ds.name)
        return known.findings(ds.backend) if known is not None else ()

    def get(self, name: str) -> Datasource:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(
                f"datasource {name!r} does not exist; choose one of: {', '.join(self.names())}"
            ) from None

    def resolve(self, dsn: str) -> Datasource:
        """A registry name, or (where the config allows it) a raw SQLAlchemy URL."""
        dsn = dsn.strip()
        if not dsn:
            raise InvalidRequest(f"dsn is empty; choose a datasource: {', '.join(self.names())}")
        if "://" not in dsn:
            return self.get(dsn)
        if not self._allow_raw:
            raise InvalidRequest(
                "dsn must name a configured datasource; raw database URLs are not allowed here "
                f"(choose one of: {', '.join(self.names())})"
            )
        try:
            url = make_url(dsn)
        except Exception:
            raise InvalidRequest("dsn is not a valid database URL") from None
        return Datasource(
            name=url.render_as_string(hide_password=True),
            url=_with_driver(url, "dsn"),
            statement_timeout_s=self._default_timeout,
        )

    def engine(self, ds: Datasource) -> Engine:
        """One pooled engine per datasource URL, created on first use: the reader."""
        return self._engine_for(ds.url)

    def writer_engine(self, ds: Datasource) -> Engine:
        """The engine of the datasource's writer credentials (imports and generations only)."""
        if ds.write_url is None:
            raise InvalidRequest(
                f"datasource {ds.name!r} takes no writes: its write_url is not configured"
            )
        return self._engine_for(ds.write_url)

    def _engine_for(self, url: URL) -> Engine:
        key = url.render_as_string(hide_password=False)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
                offer_local_infile(engine)
                self._engines[key] = engine
            return engine

    def schema(self, ds: Datasource, database: str) -> dict[str, list[str]]:
        """Tables of `database` (schema) with their columns, read live from the server."""
        schema = database or ds.default_database()
        try:
            inspector = sa.inspect(self.engine(ds))
            if schema not in inspector.get_schema_names():
                raise NotFound(f"database {schema!r} does not exist in datasource {ds.name!r}")
            return {
                table: [c["name"] for c in inspector.get_columns(table, schema=schema)]
                for table in inspector.get_table_names(schema=schema)
            }
        except sa.exc.SQLAlchemyError as exc:
            raise Unavailable(
                f"datasource {ds.name!r} could not be read: {describe_db_error(exc)}"
            ) from None

    # -- reader audit ---------------------------------------------------------------------

    def audit(self, ds: Datasource) -> ReaderAudit:
        """Ask the server now what the datasource's user may do, and remember the answer."""
        try:
            result = audit_reader(self.engine(ds), ds.backend, ds.name, ds.allow_privileged_reader)
        except sa.exc.SQLAlchemyError as exc:
            result = ReaderAudit(
                ds.name, allowed=ds.allow_privileged_reader, error=describe_db_error(exc)
            )
        with self._lock:
            self._audits[ds.name] = result
        return result

    def reader_audit(self, ds: Datasource) -> ReaderAudit:
        """The last audit of `ds` (made now when there is none, or the last one failed)."""
        with self._lock:
            known = self._audits.get(ds.name)
        if known is None or known.error:
            return self.audit(ds)
        return known

    def audit_all(self) -> list[ReaderAudit]:
        """Audit every configured datasource; each privileged reader is logged as a warning
        (allowed or not), an audit that cannot run as well."""
        results = []
        for ds in self.all():
            result = self.audit(ds)
            results.append(result)
            if result.error:
                log.warning("datasource %s: reader audit could not run: %s", ds.name, result.error)
            elif result.privileged:
                verdict = (
                    "allowed by allow_privileged_reader"
                    if result.allowed
                    else "its exports fail the pre-check"
                )
                log.warning(
                    "datasource %s connects as %s, which can do more than read (%s): %s",
                    ds.name,
                    result.user,
                    "; ".join(result.privileges),
                    verdict,
                )
        return results

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def describe_db_error(exc: BaseException) -> str:
    """The database's own message in one line, without the statement, parameters, URL or
    driver internals (PyMySQL's `(code, "message")` tuple, psycopg's LINE pointer)."""
    orig = getattr(exc, "orig", None) or exc
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1][:500]  # PyMySQL: (code, message)
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:500]


def offer_local_infile(engine: Engine) -> None:
    """Let the MySQL/MariaDB connections `engine` opens offer LOAD DATA LOCAL, which writes
    (`service.load`) use for INSERT and SKIP_EXISTING. PyMySQL itself still refuses every
    file a server asks for (its `local_infile` stays off): only the write path answers such
    a request, and only with the rows it is writing, never with a file."""
    if engine.dialect.name not in ("mysql", "mariadb") or sa.event.contains(
        engine, "do_connect", _announce_local_files
    ):
        return
    sa.event.listen(engine, "do_connect", _announce_local_files)


def _announce_local_files(
    dialect: object, record: object, cargs: object, cparams: dict[str, Any]
) -> None:
    cparams["client_flag"] = cparams.get("client_flag", 0) | CLIENT.LOCAL_FILES
