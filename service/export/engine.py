"""Run one export: from a datasource to a finished local file (csv, xlsx, sql or zip).

Layout: one DATA result is one `.csv` or `.xlsx`; STRUCT alone is one `schema.sql`-style
`.sql` file (always UTF-8); anything more (several tables, or STRUCT with DATA) is one
`.zip` of per-table CSV files plus `schema.sql`, or one workbook with a sheet per table and
a `schema` sheet (one DDL line per row).

The file is written under a temporary name in `work_dir` and renamed only when complete;
on any failure the partial files are removed and `ExportFailed` carries one line a user
can act on. CSV in UTF-8 is rendered by the server where it can (PostgreSQL COPY, one
CSV line a row from MySQL/MariaDB); everything else reads rows.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from service.datasources import Datasource, describe_db_error
from service.domain.errors import WoxqaqError
from service.domain.model import Content, Encoding, ExportSpec, ExportType
from service.export import ddl
from service.export.sources import (
    Canceled,
    ColumnInfo,
    ReadOnlySession,
    SourceError,
    Timeout,
    open_readonly,
    sql_statement,
)
from service.export.writers import (
    XLSX_BATCH_ROWS,
    XLSX_MAX_ROWS,
    CsvWriter,
    WriteError,
    XlsxBook,
    codec_of,
    safe_filename,
)

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class ExportOptions:
    fetch_size: int = 10_000
    csv_bom: bool = False
    statement_timeout_s: int = 300
    xlsx_max_rows: int = XLSX_MAX_ROWS  # rows per sheet, header included
    timezone: str = "UTC"  # the task's: what times mean in the session and in the file
    escape_formulas: bool = False  # CSV text starting with = + - @ gets a leading '


@dataclass(frozen=True)
class ExportResult:
    path: Path  # the finished local file (csv, xlsx, sql or zip), complete and closed
    filename: str  # the name users download it as
    content_type: str
    rows: int
    bytes: int


class ExportFailed(Exception):
    """The export did not produce a file; the message is one line for the user."""


class ExportCanceled(ExportFailed):
    """The export stopped because it was canceled."""


@dataclass(frozen=True)
class Part:
    name: str  # table name, or "result" in SQL mode
    stmt: sa.Executable
    table: sa.Table | None = None


def plan(
    spec: ExportSpec,
    source: Datasource,
    session: ReadOnlySession,
    params: Mapping[str, object] | None,
) -> list[Part]:
    """The statements an export runs, one per table (or the query), against the live schema;
    the pre-check EXPLAINs these same statements."""
    if spec.is_sql:
        statement = sql_statement(spec.statement, params, source.sqlglot_dialect, session.wall_zone)
        return [Part("result", statement)]
    schema = spec.database or source.default_database()
    if spec.export_all:
        names = session.table_names(schema)
        if not names:
            raise SourceError(f"Database `{schema}` has no tables to export.")
        return [Part(n, *_table_select(session, source, n, schema, (), "")) for n in names]
    if not spec.tables:
        raise SourceError("Nothing to export: name a table, choose all tables, or give a query.")
    return [
        Part(
            o.table,
            *_table_select(
                session, source, o.table, schema, () if o.all_fields else o.fields, o.filter
            ),
        )
        for o in spec.tables
    ]


def _table_select(
    session: ReadOnlySession,
    source: Datasource,
    name: str,
    schema: str,
    fields: tuple[str, ...],
    filter_text: str,
) -> tuple[sa.Select[Any], sa.Table]:
    table = session.reflect(name, schema)
    columns = [_column(table, f) for f in fields] if fields else list(table.columns)
    stmt = sa.select(*columns)
    if filter_text.strip():
        from service.domain.filters import parse_filter
        from service.export.filter_sql import compile_filter

        expr = parse_filter(
            filter_text, [c.name for c in table.columns], source.sqlglot_dialect, table=name
        )
        stmt = stmt.where(compile_filter(expr, table))
    return stmt, table


def export(
    spec: ExportSpec,
    source: Datasource,
    engine: sa.Engine,
    *,
    work_dir: Path,
    basename: str,
    options: ExportOptions,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    params: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> ExportResult:
    """Export `spec` from `source` into a file in `work_dir` named after `basename`.

    `basename` gets made safe for any file system and the extension added. `progress` hears
    (rows, bytes) at most four times a second and once at the end; `cancelled` is polled
    from the export's thread and from a watchdog thread that interrupts a running
    statement, so it must be thread-safe (an Event's `is_set` is). `params` binds the
    `:name` parameters of a SQL-mode query; `at` is the run's logical time (default now).
    Raises ExportFailed (ExportCanceled when canceled) with nothing left behind in
    `work_dir`.
    """
    started = time.monotonic()
    work_dir.mkdir(parents=True, exist_ok=True)
    base = safe_filename(basename)
    tracker = _Tracker(progress, cancelled)
    # Everything, the drivers' scratch files included, lives in a private
    # directory until the finished file is renamed out of it.
    scratch = work_dir / f".{base}.{uuid.uuid4().hex[:8]}.part"
    try:
        scratch.mkdir()
        temp = scratch / "out"
        with open_readonly(
            engine,
            source.backend,
            options.statement_timeout_s,
            cancelled,
            zone=ZoneInfo(options.timezone),
            at=at,
        ) as s:
            run = _Run(spec, source, s, options, tracker, params)
            ext, content_type = run.write(temp)
        final = work_dir / f"{base}{ext}"
        os.replace(temp, final)
    except Exception as exc:
        failure = _failure(exc, source, options, cancelled)
        log.warning("export failed: datasource=%s basename=%s error=%s", source.name, base, failure)
        raise failure from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size = final.stat().st_size
    result = ExportResult(final, final.name, content_type, tracker.total_rows, size)
    tracker.finish(result.rows, size)
    log.info(
        "export done: datasource=%s file=%s rows=%d bytes=%d seconds=%.1f",
        source.name,
        final.name,
        result.rows,
        size,
        time.monotonic() - started,
    )
    return result


class _Tracker:
    """Counts rows and bytes over all parts; reports at most every quarter second."""

    def __init__(
        self, progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None
    ) -> None:
        self._progress = progress
        self._cancelled = cancelled
        self._last = 0.0
        self.done_rows = 0  # in finished parts
        self.done_bytes = 0
        self.total_rows = 0

    def tick(self, rows: int, nbytes: int) -> None:
        if self._cancelled is not None and self._cancelled():
            raise Canceled()
        self.total_rows = self.done_rows + rows
        now = time.monotonic()
        if self._progress is not None and now - self._last >= _PROGRESS_INTERVAL_S:
            self._last = now
            try:
                self._progress(self.total_rows, self.done_bytes + nbytes)
            except Exception:  # a broken listener must not break the export
                log.exception("progress callback failed")

    def finish(self, rows: int, nbytes: int) -> None:
        if self._progress is not None:
            try:
                self._progress(rows, nbytes)
            except Exception:
                log.exception("progress callback failed")

    def part_done(self, rows: int, nbytes: int) -> None:
        self.done_rows += rows
        self.done_bytes += nbytes
        self.total_rows = self.done_rows


class _Run:
    def __init__(
        self,
        spec: ExportSpec,
        source: Datasource,
        session: ReadOnlySession,
        options: ExportOptions,
        tracker: _Tracker,
        params: Mapping[str, object] | None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.s = session
        self.options = options
        self.tracker = tracker
        self.parts = self._plan(params)
        self.want_data = spec.content in (Content.DATA, Content.ALL)
        self.want_struct = spec.content in (Content.STRUCT, Content.ALL)
        # Table DDL is read before the data; a query's columns are known once it runs.
        self.ddl: dict[int, str] = {}
        if self.want_struct:
            for i, p in enumerate(self.parts):
                if p.table is not None:
                    self.ddl[i] = ddl.table_ddl(session, p.table)

    def _plan(self, params: Mapping[str, object] | None) -> list[Part]:
        return plan(self.spec, self.source, self.s, params)

    # layout ----------------------------------------------------------------------------

    def write(self, temp: Path) -> tuple[str, str]:
        """Write the whole result to `temp`; returns the extension and content type."""
        if not self.want_data:
            with temp.open("wb") as f:
                f.write(self._schema_text().encode("utf-8"))
            return ".sql", "application/sql; charset=utf-8"
        single = len(self.parts) == 1 and not self.want_struct
        if self.spec.type is ExportType.EXCEL:
            self._write_workbook(temp)
            return ".xlsx", XLSX_TYPE
        if single:
            with temp.open("wb", buffering=1 << 20) as f:
                self._csv_part(0, f)
            charset = codec_of(self.spec.encoding)
            return ".csv", f"text/csv; charset={charset}"
        self._write_zip(temp)
        return ".zip", "application/zip"

    def _write_zip(self, temp: Path) -> None:
        names: set[str] = set()
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for i, p in enumerate(self.parts):
                member = _unique(safe_filename(p.name), ".csv", names)
                with zf.open(member, "w", force_zip64=True) as f:
                    self._csv_part(i, f)
            if self.want_struct:
                zf.writestr(_unique("schema", ".sql", names), self._schema_text())

    def _write_workbook(self, temp: Path) -> None:
        book = XlsxBook(temp, max_rows=self.options.xlsx_max_rows)
        try:
            for i, p in enumerate(self.parts):
                stream = self.s.stream(p.stmt)
                try:
                    self._columns_seen(i, stream.columns)
                    table = book.table(p.name, [c.name for c in stream.columns])
                    size = min(self.options.fetch_size, XLSX_BATCH_ROWS)
                    for batch in stream.batches(size):
                        table.write_rows(batch)
                        self.tracker.tick(table.rows, 0)
                finally:
                    stream.close()
                self.tracker.part_done(table.rows, 0)
            if self.want_struct:
                table = book.table("schema", ["table", "ddl"])
                table.write_rows(
                    [
                        (name, line)
                        for name, text in self._schema_parts()
                        for line in text.splitlines()
                    ]
                )
        finally:
            book.close()

    def _csv_part(self, i: int, out: IO[bytes]) -> None:
        part = self.parts[i]
        writer = CsvWriter(
            out,
            self.spec.encoding,
            bom=self.options.csv_bom,
            escape_formulas=self.options.escape_formulas,
        )
        tick = self.tracker.tick
        if self.spec.encoding is not Encoding.GBK:  # the server renders it, if it can

            def on_columns(cols: list[ColumnInfo]) -> None:
                self._columns_seen(i, cols)
                writer.header([c.name for c in cols])

            rows = self.s.server_csv(
                part.stmt,
                on_columns,
                writer.write_raw,
                lambda n: tick(n, writer.bytes),
                escape_formulas=self.options.escape_formulas,
            )
            if rows is not None:
                writer.rows = rows
                self.tracker.part_done(rows, writer.bytes)
                return
        stream = self.s.stream(part.stmt)
        try:
            self._columns_seen(i, stream.columns)
            writer.header([c.name for c in stream.columns])
            for batch in stream.batches(self.options.fetch_size):
                try:
                    writer.write_rows(batch)
                except WriteError as exc:
                    raise WriteError(self._in_part(i, str(exc))) from None
                tick(writer.rows, writer.bytes)
        finally:
            stream.close()
        self.tracker.part_done(writer.rows, writer.bytes)

    # structure -------------------------------------------------------------------------

    def _columns_seen(self, i: int, columns: list[ColumnInfo]) -> None:
        if self.want_struct and i not in self.ddl:
            self.ddl[i] = ddl.result_ddl(self.parts[i].name, columns, self.s.dialect)

    def _schema_parts(self) -> Iterator[tuple[str, str]]:
        for i, p in enumerate(self.parts):
            if i not in self.ddl:  # STRUCT alone in SQL mode: describe without reading rows
                self._columns_seen(i, self.s.describe(p.stmt))
            yield p.name, self.ddl[i]

    def _schema_text(self) -> str:
        return ddl.schema_document(list(self._schema_parts()))

    def _in_part(self, i: int, message: str) -> str:
        return f"Table `{self.parts[i].name}`: {message}" if len(self.parts) > 1 else message


def _column(table: sa.Table, name: str) -> sa.Column[Any]:
    if name in table.c:
        return table.c[name]
    folded = [c for c in table.columns if c.name.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise SourceError(f"Table `{table.name}` has no column `{name}`.")


def _unique(stem: str, ext: str, taken: set[str]) -> str:
    name, n = f"{stem}{ext}", 1
    while name.lower() in taken:
        n += 1
        name = f"{stem} ({n}){ext}"
    taken.add(name.lower())
    return name


# --- failures ---------------------------------------------------------------------------

_TIMEOUT_CODES = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time


def _failure(
    exc: BaseException,
    source: Datasource,
    options: ExportOptions,
    cancelled: Callable[[], bool] | None,
) -> ExportFailed:
    if isinstance(exc, ExportFailed):
        return exc
    timeout = (
        f"The query ran longer than the statement timeout of {options.statement_timeout_s} s "
        "and was stopped: add a filter or ask for a longer timeout."
    )
    if isinstance(exc, Canceled) or (cancelled is not None and _safe_call(cancelled)):
        return ExportCanceled("The export was canceled.")
    if isinstance(exc, Timeout) or _is_timeout(exc):
        return ExportFailed(timeout)
    if isinstance(exc, (SourceError, WriteError, WoxqaqError)):
        message = str(exc)
    elif isinstance(exc, (sa.exc.SQLAlchemyError, sqlite3.Error)) or _is_driver_error(exc):
        message = f"The database refused the export: {describe_db_error(exc)}"
    elif isinstance(exc, OSError):
        message = f"The export file could not be written: {exc.strerror or type(exc).__name__}"
    else:
        log.error("export failed unexpectedly", exc_info=exc)
        message = f"The export failed unexpectedly ({type(exc).__name__}); see the service log."
    password = source.url.password
    if password:
        message = message.replace(str(password), "***")
    return ExportFailed(" ".join(message.split()))


def _safe_call(f: Callable[[], bool]) -> bool:
    try:
        return bool(f())
    except Exception:
        return False


def _is_driver_error(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("psycopg", "pymysql")


def _is_timeout(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) == "57014" and "statement timeout" in str(orig):
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in _TIMEOUT_CODES
