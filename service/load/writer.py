"""The write path per dialect; see the package docstring for the interface."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

import sqlalchemy as sa
from pymysql.connections import LoadLocalPacketWrapper, MySQLResult
from pymysql.constants import CLIENT, COMMAND
from pymysql.converters import escape_timedelta
from sqlalchemy.engine import Connection, Engine

from service.datasources import describe_db_error
from service.domain.imports import ValueKind
from service.domain.model import ImportMode
from service.export.sources import StatementWatchdog, release
from service.export.writers import CsvWriter

log = logging.getLogger(__name__)

# How often the row loop looks at `cancelled` and reports progress.
CHECK_EVERY = 10_000
# MySQL/MariaDB: rows per INSERT batch, and the most bytes one statement may carry
# (under the server's default max_allowed_packet of 16 MiB, with room to spare).
MYSQL_BATCH_ROWS = 5_000
MYSQL_MAX_STATEMENT_BYTES = 4 * 1024 * 1024
MYSQL_DUPLICATE_KEY = 1062
_STAGING = "woxqaq_load_rows"
# Types whose str() is a MySQL literal as it is (a Decimal's '1E+2' is one too).
_PLAIN_LITERALS = frozenset({int, Decimal})

BackupOpener = Callable[[], AbstractContextManager[IO[bytes]]]


# Column kinds whose text PostgreSQL's own input functions read as the import's converters
# do, for every text those accept (a timestamp without time zone is not among them:
# PostgreSQL drops an offset that the converter applies; nor floats: it refuses 1_000; nor
# UUIDs: it refuses the spaces around one).
PG_READS_TEXT = frozenset(
    {
        ValueKind.TEXT,
        ValueKind.OTHER,
        ValueKind.INTEGER,
        ValueKind.DECIMAL,
        ValueKind.BOOLEAN,
        ValueKind.DATE,
        ValueKind.JSON,
    }
)


class LoadError(Exception):
    """The write failed and nothing was written; the message says why, without secrets."""


class LoadCanceled(LoadError):
    """The write was canceled; nothing was written."""


@dataclass(frozen=True)
class LoadTarget:
    table: str
    columns: tuple[str, ...]
    schema: str = ""  # empty: the connection's default schema (database on MySQL)
    # The unique key that says "this row exists already"; empty: found by `conflict_key`.
    key_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadResult:
    written: int  # new rows
    skipped: int  # rows whose key existed, left alone (SKIP_EXISTING)
    updated: int  # rows whose key existed, updated (UPSERT); also the rows in the backup

    @property
    def total(self) -> int:
        return self.written + self.skipped + self.updated


def conflict_key(
    conn_or_engine: Engine | Connection, schema: str, table: str, columns: Sequence[str]
) -> tuple[str, ...]:
    """The table's primary key, else its first unique key, whose columns are all among
    `columns`; () when there is none (then only INSERT mode can work)."""
    inspector = sa.inspect(conn_or_engine)
    where = schema or None
    candidates: list[Sequence[str | None] | None] = [
        inspector.get_pk_constraint(table, schema=where).get("constrained_columns")
    ]
    candidates += [u.get("column_names") for u in inspector.get_unique_constraints(table, where)]
    candidates += [
        i.get("column_names")
        for i in inspector.get_indexes(table, schema=where)
        if i.get("unique") and not i.get("expressions")
    ]
    loaded = set(columns)
    for key in candidates:
        if key and all(c is not None and c in loaded for c in key):
            return tuple(str(c) for c in key)
    return ()


def load_rows(
    engine: Engine,
    target: LoadTarget,
    rows: Iterable[Sequence[Any]],
    *,
    mode: ImportMode = ImportMode.INSERT,
    statement_timeout_s: int = 300,
    cancelled: Callable[[], bool] | None = None,
    backup: BackupOpener | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Write `rows` into `target` in one transaction; see the package docstring."""
    if not target.columns:
        raise LoadError("no columns to write")
    if len(set(target.columns)) != len(target.columns):
        raise LoadError("a column is named twice in the columns to write")
    backend = engine.dialect.name
    if backend == "mariadb":
        backend = "mysql"
    if backend not in ("postgresql", "mysql"):
        raise LoadError(f"writing into {backend} datasources is not supported")
    is_canceled = cancelled or (lambda: False)
    session = _WriteSession(engine, backend, statement_timeout_s)
    watchdog = session.watchdog = StatementWatchdog(session, engine, cancelled)
    try:
        with session, watchdog:
            plan = _plan(session.conn, target, mode)
            out_cm: AbstractContextManager[IO[bytes] | None] = (
                backup()
                if backup is not None and mode is ImportMode.UPSERT and plan.updatable
                # Nothing to replace without columns to update: no backup either.
                else contextlib.nullcontext(None)
            )
            tick = _Ticker(is_canceled, progress)
            # The backup closes (so is published) first, then the transaction commits.
            with out_cm as out:
                if backend == "postgresql":
                    result = _load_pg(session, plan, rows, tick, out)
                else:
                    result = _load_mysql(session, plan, rows, tick, out)
            tick.check()
    except LoadError:
        raise
    except Exception as exc:
        if isinstance(exc, sa.exc.SQLAlchemyError) or session.interrupted or _is_driver(exc):
            raise _db_failure(exc, session.interrupted, statement_timeout_s) from None
        raise
    if watchdog.fired:  # canceled as the last statement finished: it was rolled back
        raise LoadCanceled("canceled; nothing was written")
    return result


# -- the transaction ---------------------------------------------------------------------


class _WriteSession:
    """One connection in one read-write transaction with a statement timeout; committed
    when the block ends cleanly, rolled back otherwise."""

    def __init__(self, engine: Engine, backend: str, timeout_s: int) -> None:
        self.engine = engine
        self.backend = backend
        self.timeout_s = int(timeout_s)
        self.conn: Connection
        self.raw: Any = None
        self.watchdog: StatementWatchdog | None = None

    @property
    def interrupted(self) -> bool:
        return self.watchdog is not None and self.watchdog.fired

    def __enter__(self) -> _WriteSession:
        self.conn = self.engine.connect()
        self.raw = self.conn.connection.driver_connection
        try:
            if self.backend == "postgresql":
                self.conn.exec_driver_sql(f"SET LOCAL statement_timeout = {self.timeout_s * 1000}")
                self.conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
            else:
                self.conn.exec_driver_sql("ROLLBACK")  # end whatever the pool's ping began
                if getattr(self.conn.dialect, "is_mariadb", False):
                    self.conn.exec_driver_sql(f"SET SESSION max_statement_time = {self.timeout_s}")
                self.conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
                self.conn.exec_driver_sql("START TRANSACTION")
        except BaseException:
            self._close(broken=True)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        broken = exc_type is not None
        try:
            if not broken:
                self.conn.commit()
        except BaseException:
            broken = True
            raise
        finally:
            self._close(broken)

    def _close(self, broken: bool) -> None:
        release(self.conn, self.backend, broken)


class _Ticker:
    """Counts rows; every CHECK_EVERY of them looks at the cancel hook and reports progress."""

    def __init__(
        self, cancelled: Callable[[], bool], progress: Callable[[int], None] | None
    ) -> None:
        self.cancelled = cancelled
        self.progress = progress
        self.rows = 0

    def add(self, n: int) -> None:
        before = self.rows
        self.rows += n
        if self.rows // CHECK_EVERY != before // CHECK_EVERY:
            self.check()
            if self.progress is not None:
                self.progress(self.rows)

    def check(self) -> None:
        if self.cancelled():
            raise LoadCanceled("canceled; nothing was written")


@dataclass(frozen=True)
class _Plan:
    table: str  # quoted and qualified
    columns: tuple[str, ...]  # quoted
    keys: tuple[str, ...]  # quoted; empty in INSERT mode when the table has none
    mode: ImportMode

    @property
    def updatable(self) -> tuple[str, ...]:
        """The columns an UPSERT changes: those written that are not the key."""
        return tuple(c for c in self.columns if c not in self.keys)


def _plan(conn: Connection, target: LoadTarget, mode: ImportMode) -> _Plan:
    quote = conn.dialect.identifier_preparer.quote
    keys = target.key_columns
    if not keys and mode is not ImportMode.INSERT:
        keys = conflict_key(conn, target.schema, target.table, target.columns)
        if not keys:
            raise LoadError(
                f"table {target.table} has no primary key or unique key among the columns "
                f"written ({', '.join(target.columns)}); {mode.name} finds existing rows by "
                "one: write the key columns too, or use INSERT"
            )
    missing = [k for k in keys if k not in target.columns]
    if missing:
        raise LoadError(f"key column(s) {', '.join(missing)} are not among the columns written")
    table = quote(target.table)
    if target.schema:
        table = f"{quote(target.schema)}.{table}"
    return _Plan(
        table=table,
        columns=tuple(quote(c) for c in target.columns),
        keys=tuple(quote(k) for k in keys),
        mode=mode,
    )


# -- PostgreSQL --------------------------------------------------------------------------


def _load_pg(
    session: _WriteSession,
    plan: _Plan,
    rows: Iterable[Sequence[Any]],
    tick: _Ticker,
    backup: IO[bytes] | None,
) -> LoadResult:
    cols = ", ".join(plan.columns)
    with session.raw.cursor() as cur:
        if plan.mode is ImportMode.INSERT:
            # Nothing to match: straight into the table, whose constraints judge every row
            # (a duplicate key fails the COPY, and the transaction with it).
            _pg_copy_in(cur, plan.table, cols, rows, tick)
            return LoadResult(written=tick.rows, skipped=0, updated=0)
        # Only the written columns, with their types and none of the constraints: the
        # target's own constraints judge the rows once, in the INSERT.
        cur.execute(
            f"CREATE TEMP TABLE {_STAGING} ON COMMIT DROP AS "
            f"SELECT {cols} FROM {plan.table} WITH NO DATA"
        )
        _pg_copy_in(cur, _STAGING, cols, rows, tick)
        total = tick.rows
        cur.execute(f"ANALYZE {_STAGING}")  # the join below plans on real figures
        replaced = 0
        if plan.mode is ImportMode.UPSERT and plan.updatable:
            replaced = _pg_backup(cur, plan, backup)
        keys = ", ".join(plan.keys)
        if plan.mode is ImportMode.SKIP_EXISTING or not plan.updatable:
            conflict = f"ON CONFLICT ({keys}) DO NOTHING"
        else:
            changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in plan.updatable)
            conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {changes}"
        cur.execute(f"INSERT INTO {plan.table} ({cols}) SELECT {cols} FROM {_STAGING} {conflict}")
        affected = cur.rowcount
    if replaced:
        return LoadResult(written=affected - replaced, skipped=0, updated=replaced)
    return LoadResult(written=affected, skipped=total - affected, updated=0)


def _pg_copy_in(
    cur: Any, table: str, cols: str, rows: Iterable[Sequence[Any]], tick: _Ticker
) -> None:
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        write_row = copy.write_row
        for batch in _batches(rows, CHECK_EVERY):
            for row in batch:
                write_row(row)
            tick.add(len(batch))


def _pg_backup(cur: Any, plan: _Plan, out: IO[bytes] | None) -> int:
    """Save (and lock) the rows the UPSERT will replace; returns how many."""
    match = " AND ".join(f"t.{k} = s.{k}" for k in plan.keys)
    query = (
        f"SELECT t.* FROM {plan.table} AS t WHERE EXISTS "
        f"(SELECT 1 FROM {_STAGING} AS s WHERE {match}) FOR UPDATE OF t"
    )
    if out is None:
        cur.execute(query)
        return int(cur.rowcount)
    with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            out.write(chunk)
    return int(cur.rowcount)


# -- MySQL / MariaDB ---------------------------------------------------------------------


def _load_mysql(
    session: _WriteSession,
    plan: _Plan,
    rows: Iterable[Sequence[Any]],
    tick: _Ticker,
    backup: IO[bytes] | None,
) -> LoadResult:
    cols = ", ".join(plan.columns)
    verb = "INSERT IGNORE" if plan.mode is ImportMode.SKIP_EXISTING else "INSERT"
    prefix = f"{verb} INTO {plan.table} ({cols}) VALUES "
    suffix = ""
    if plan.mode is ImportMode.UPSERT:
        changes = plan.updatable or plan.keys[:1]  # key only: a no-op update, nothing replaced
        suffix = " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in changes)
    if plan.mode is not ImportMode.UPSERT and _may_load_local(session):
        return _mysql_load_data(session, plan, rows, tick)
    saver = _MysqlBackup(plan, backup) if plan.mode is ImportMode.UPSERT else None
    written = skipped = updated = 0
    with session.raw.cursor() as cur:
        for batch in _batches(rows, MYSQL_BATCH_ROWS):
            existing = saver.save(cur, batch) if saver is not None else 0
            inserted = 0
            for statement, count in _statements(cur, prefix, suffix, batch):
                affected = cur.execute(statement)
                if plan.mode is ImportMode.SKIP_EXISTING:
                    _require_only_duplicates(cur, count - affected)
                    inserted += affected
            if plan.mode is ImportMode.SKIP_EXISTING:
                written += inserted
                skipped += len(batch) - inserted
            elif plan.mode is ImportMode.UPSERT and plan.updatable:
                written += len(batch) - existing
                updated += existing
            elif plan.mode is ImportMode.UPSERT:  # nothing to change in a row that exists
                written += len(batch) - existing
                skipped += existing
            else:
                written += len(batch)
            tick.add(len(batch))
        if saver is not None:
            saver.finish(cur)
    return LoadResult(written=written, skipped=skipped, updated=updated)


def _statements(
    cur: Any, prefix: str, suffix: str, batch: Sequence[Sequence[Any]]
) -> Iterator[tuple[str, int]]:
    """Multi-row INSERTs of at most MYSQL_MAX_STATEMENT_BYTES each, with their row counts."""
    conn = cur.connection
    literal, escape = conn.escape, conn._escape_string
    parts: list[str] = []
    size = 0
    for row in batch:
        # The common types by hand: the driver's escaping per value is most of the cost.
        # (Its _escape_string honours the server's NO_BACKSLASH_ESCAPES mode.)
        values = (
            "("
            + ",".join(
                [
                    "NULL"
                    if v is None
                    else "'" + escape(v) + "'"
                    if v.__class__ is str
                    else str(v)
                    if v.__class__ in _PLAIN_LITERALS
                    else literal(v)
                    for v in row
                ]
            )
            + ")"
        )
        if parts and size + len(values) > MYSQL_MAX_STATEMENT_BYTES:
            yield prefix + ",".join(parts) + suffix, len(parts)
            parts, size = [], 0
        parts.append(values)
        size += len(values) + 1
    if parts:
        yield prefix + ",".join(parts) + suffix, len(parts)


def _may_load_local(session: _WriteSession) -> bool:
    """LOAD DATA LOCAL needs a connection that offered it (`offer_local_infile`) and a
    server that allows it (`local_infile`, off by default on MySQL 8); else rows are
    inserted."""
    if not session.raw.client_flag & CLIENT.LOCAL_FILES:
        return False
    allowed = session.conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar()
    return str(allowed) in ("1", "ON")


def _mysql_load_data(
    session: _WriteSession, plan: _Plan, rows: Iterable[Sequence[Any]], tick: _Ticker
) -> LoadResult:
    """INSERT / SKIP_EXISTING as one LOAD DATA LOCAL statement fed with the rows as they are
    rendered: the server parses while we convert. LOCAL turns every error into a warning
    (the server cannot stop the stream), so warnings are judged after: in INSERT mode any
    fails the load, in SKIP_EXISTING any but a duplicate key."""
    name = f"woxqaq-rows-{secrets.token_hex(16)}"
    ignore = " IGNORE" if plan.mode is ImportMode.SKIP_EXISTING else ""
    raw = session.raw
    literal = raw.escape  # as the session reads it, NO_BACKSLASH_ESCAPES or not
    sql = (
        f"LOAD DATA LOCAL INFILE '{name}'{ignore} INTO TABLE {plan.table} "
        f"CHARACTER SET utf8mb4 FIELDS TERMINATED BY {literal(chr(9))} ENCLOSED BY '' "
        f"ESCAPED BY {literal(chr(92))} LINES TERMINATED BY {literal(chr(10))} "
        f"({', '.join(plan.columns)})"
    )
    raw._execute_command(COMMAND.COM_QUERY, sql.encode(raw.encoding))
    result = _StreamedLoad(raw, name, _load_data_stream(rows, tick))
    result.read()
    if not result.answered:
        raise LoadError("the database did not ask for the rows to load; nothing was written")
    raw._result = result
    if result.server_status is not None:
        raw.server_status = result.server_status
    loaded, total = int(result.affected_rows), tick.rows
    with raw.cursor() as cur:
        if plan.mode is ImportMode.SKIP_EXISTING:
            _require_only_duplicates(cur, total - loaded, result.warning_count)
            return LoadResult(written=loaded, skipped=total - loaded, updated=0)
        if result.warning_count or loaded != total:
            _refuse_warned_rows(cur, total - loaded)
    return LoadResult(written=loaded, skipped=0, updated=0)


class _StreamedLoad(MySQLResult):  # type: ignore[misc]
    """The result of our LOAD DATA LOCAL: answers the server's request for the file with
    the stream of rows, and only when it names the file the statement named."""

    def __init__(self, conn: Any, name: str, stream: Iterator[bytes]) -> None:
        super().__init__(conn)
        self.name = name.encode()
        self.stream = stream
        self.answered = False

    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn = self.connection
        failure: BaseException | None = None
        try:
            if LoadLocalPacketWrapper(first_packet).filename != self.name:
                raise LoadError(
                    "the database asked for a file other than the rows being written; "
                    "nothing was sent and nothing was written"
                )
            self.answered = True
            for packet in self.stream:
                conn.write_packet(packet)
        except BaseException as exc:  # still end the stream, so the connection stays usable
            failure = exc
        try:
            conn.write_packet(b"")  # the end of the data
            ok = conn._read_packet()  # raises the server's error, if it had one
        except Exception:
            if failure is not None:
                raise failure from None
            raise
        if failure is not None:
            raise failure
        self._read_ok_packet(ok)


# What the server reads as each Python value in a LOAD DATA field (escaped by backslash):
# text with its backslashes, tabs, newlines and NULs escaped, NULL as \N, others as the
# driver writes them in an INSERT.
_LOAD_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r\x00]").search
_LOAD_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"})
_LOAD_PACKET_BYTES = 64 * 1024


def _load_text(value: Any) -> str:
    if value.__class__ is str:
        return value.translate(_LOAD_ESCAPES) if _LOAD_NEEDS_ESCAPE(value) else value
    if value.__class__ in _PLAIN_LITERALS:
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):  # the clock time, as the driver writes it
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, time):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(escape_timedelta(value))[1:-1]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LoadError(f"{value} cannot be written into a MySQL column; nothing was written")
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise LoadError("binary values cannot be loaded as text; nothing was written")
    return _load_text(str(value))


def _load_data_stream(rows: Iterable[Sequence[Any]], tick: _Ticker) -> Iterator[bytes]:
    """The rows as LOAD DATA text, UTF-8, in packets of at most _LOAD_PACKET_BYTES (the
    common types inline: per value calls are most of the cost)."""
    for batch in _batches(rows, CHECK_EVERY):
        text = "".join(
            [
                "\t".join(
                    [
                        "\\N"
                        if v is None
                        else (v.translate(_LOAD_ESCAPES) if _LOAD_NEEDS_ESCAPE(v) else v)
                        if v.__class__ is str
                        else str(v)
                        if v.__class__ in _PLAIN_LITERALS
                        else v.isoformat()
                        if v.__class__ is date
                        else _load_text(v)
                        for v in row
                    ]
                )
                + "\n"
                for row in batch
            ]
        )
        data = text.encode("utf-8")
        for start in range(0, len(data), _LOAD_PACKET_BYTES):
            yield data[start : start + _LOAD_PACKET_BYTES]
        tick.add(len(batch))


def _refuse_warned_rows(cur: Any, not_loaded: int) -> None:
    """INSERT mode through LOAD DATA LOCAL: the first warnings say why it fails."""
    cur.execute("SHOW WARNINGS LIMIT 3")
    messages = [str(message) for _level, _code, message in cur.fetchall()]
    why = "; ".join(messages) or f"{not_loaded:,} rows were not written"
    hint = ""
    if any("Duplicate entry" in m for m in messages):
        hint = "; rows whose key exists can be skipped (SKIP_EXISTING) or updated (UPSERT)"
    raise LoadError(f"the database refused the write: {why}; nothing was written{hint}")


def _require_only_duplicates(cur: Any, ignored: int, warnings: int | None = None) -> None:
    """INSERT IGNORE turns every error into a warning: only duplicate keys may be ignored,
    one warning for each row left out; any warning more is another problem."""
    warned = cur.warning_count if warnings is None else warnings
    if warned <= ignored:
        return
    cur.execute("SHOW WARNINGS")
    for _level, code, message in cur.fetchall():
        if int(code) != MYSQL_DUPLICATE_KEY:
            raise LoadError(f"the database refused a row: {message}; nothing was written")
    # The server lists only its first warnings (max_error_count).
    raise LoadError(
        f"the database warned about {warned - ignored:,} rows beyond those whose key exists; "
        "nothing was written"
    )


class _MysqlBackup:
    """UPSERT on MySQL: per batch, lock and save the existing rows the batch will replace."""

    def __init__(self, plan: _Plan, out: IO[bytes] | None) -> None:
        self.plan = plan
        self.key_positions = [plan.columns.index(k) for k in plan.keys]
        self.writer = CsvWriter(out) if out is not None else None
        self.header_written = False

    def save(self, cur: Any, batch: Sequence[Sequence[Any]]) -> int:
        keys = list(dict.fromkeys(tuple(row[i] for i in self.key_positions) for row in batch))
        one = "(" + ", ".join(["%s"] * len(self.plan.keys)) + ")"
        match = ", ".join(cur.mogrify(one, k) for k in keys)
        cur.execute(
            f"SELECT * FROM {self.plan.table} WHERE ({', '.join(self.plan.keys)}) "
            f"IN ({match}) FOR UPDATE"
        )
        self._header(cur)
        count = 0
        while chunk := cur.fetchmany(1000):
            count += len(chunk)
            if self.writer is not None:
                self.writer.write_rows(chunk)
        return count

    def finish(self, cur: Any) -> None:
        if not self.header_written and self.writer is not None:  # no rows at all
            cur.execute(f"SELECT * FROM {self.plan.table} WHERE 1 = 0")
            self._header(cur)

    def _header(self, cur: Any) -> None:
        if not self.header_written and self.writer is not None:
            self.writer.header([d[0] for d in cur.description])
            self.header_written = True


# -- shared ------------------------------------------------------------------------------


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _is_driver(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("psycopg", "pymysql"))


def _db_failure(exc: BaseException, watchdog_fired: bool, timeout: int) -> LoadError:
    if watchdog_fired:
        return LoadCanceled("canceled; nothing was written")
    text = describe_db_error(exc)
    lowered = text.lower()
    if "statement timeout" in lowered or "max_statement_time" in lowered:
        return LoadError(
            f"the write took longer than the statement timeout ({timeout} s); nothing was "
            "written: split the file or ask for a longer datasource statement_timeout_s"
        )
    orig = getattr(exc, "orig", None) or exc
    detail = getattr(getattr(orig, "diag", None), "message_detail", None)
    if detail:  # PostgreSQL names the offending key here
        text = f"{text} ({detail.strip()[:300]})"
    hint = ""
    if getattr(orig, "sqlstate", None) == "23505" or _mysql_code(orig) == MYSQL_DUPLICATE_KEY:
        hint = "; rows whose key exists can be skipped (SKIP_EXISTING) or updated (UPSERT)"
    return LoadError(f"the database refused the write: {text}; nothing was written{hint}")


def _mysql_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
