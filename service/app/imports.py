"""Data import: an uploaded CSV or XLSX file, checked whole, approved, then written into one
table all or nothing.

Submit checks the request's shape; the pre-check reads the whole file (streaming), maps its
columns onto the table's live columns, converts every cell and records the file's SHA-256,
row count and first rows as the task's preview; a run re-reads the object, refuses it if its
SHA-256 is not the approved one, and writes it with the datasource's writer credentials
through `service.load`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import call, itemgetter
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.app.kinds import Precheck, RunControl, RunFailed, RunOutcome
from service.app.runs import safe_name
from service.config import Config
from service.datasources import Datasource, DatasourceRegistry, describe_db_error
from service.domain.errors import InvalidRequest, NotFound, Unavailable
from service.domain.imports import (
    BadValue,
    Mapping,
    Problems,
    TargetColumn,
    converter,
    is_writable,
    map_columns,
    text_passer,
    text_row,
)
from service.domain.model import Encoding, ExportType, ImportSpec, Preview, Task
from service.export.writers import text_of
from service.load import (
    PG_READS_TEXT,
    LoadCanceled,
    LoadError,
    LoadResult,
    LoadTarget,
    conflict_key,
    load_rows,
)
from service.load.files import FileProblem, HashingReader, open_rows
from service.load.seen_keys import SeenKeys
from service.load.table_columns import target_column
from service.storage.base import ObjectStore
from service.store.repository import TaskStore

if TYPE_CHECKING:
    from service.app.tasks import NewTask

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
UPLOAD_PREFIX = "uploads/"
# The pre-check checks keys a batch of rows at a time (see SeenKeys): at most this many rows,
# and this many cells, wait for their batch.
KEY_BATCH_ROWS = 50_000
KEY_BATCH_CELLS = 200_000


class ImportHandler:
    """The KindHandler of DATA_IMPORT."""

    def __init__(
        self, config: Config, store: TaskStore, registry: DatasourceRegistry, objects: ObjectStore
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.objects = objects
        self.limits = config.imports

    # -- submit --------------------------------------------------------------------------

    def validate(self, new: NewTask) -> None:
        spec = new.import_spec
        if spec is None:
            raise InvalidRequest("a DATA_IMPORT task needs its detail in dimd")
        if not spec.table.strip():
            raise InvalidRequest("dimd.table is empty: name the table to import into")
        if len(spec.table) > 200 or len(new.spec.database) > 200:
            raise InvalidRequest("dimd.table and dimd.database are limited to 200 characters")
        if not spec.object_key.startswith(UPLOAD_PREFIX) or len(spec.object_key) > 1024:
            raise InvalidRequest(
                "dimd.object_key must be the key UploadService.PreSign gave (uploads/…)"
            )
        if spec.format is ExportType.EXCEL and spec.encoding is not Encoding.UTF8:
            raise InvalidRequest("dimd.encoding applies to CSV files only; leave it unset")
        if spec.no_header and not spec.columns:
            raise InvalidRequest(
                "dimd.no_header needs dimd.columns: the table column of each file column"
            )
        if len(spec.columns) > 5000 or any(len(c) > 200 for c in spec.columns):
            raise InvalidRequest("dimd.columns is limited to 5,000 names of 200 characters")
        if len(spec.sheet) > 200:
            raise InvalidRequest("dimd.sheet is limited to 200 characters")
        if len(new.spec.reason) > 4000:
            raise InvalidRequest("dimd.import_reason is limited to 4,000 characters")

    # -- pre-check -----------------------------------------------------------------------

    def precheck(self, new: NewTask, ds: Datasource) -> Precheck:
        spec = new.import_spec
        assert spec is not None
        schema = new.spec.database or ds.default_database()
        refused = write_permission_problems(ds, schema, spec.table)
        if refused:
            return Precheck(refused)
        columns = self._columns(self.registry.engine(ds), ds, schema, spec.table)
        problems = Problems()
        preview_rows: list[tuple[str | None, ...]] = []
        rows = 0
        with self.objects.open_reader(spec.object_key) as raw:
            reader = HashingReader(raw, self.limits.max_bytes)
            scan = _Scan(self, spec, columns, self.registry.engine(ds), schema, reader)
            try:
                for _number, values in scan.rows(problems, strict=False):
                    rows += 1
                    if len(preview_rows) < PREVIEW_ROWS:
                        preview_rows.append(tuple(_cell_text(v) for v in values))
                reader.drain()
            except FileProblem as exc:
                problems.add(str(exc))
        mapping = scan.mapping
        if mapping is None:
            return Precheck(problems.summary())
        if rows == 0 and not problems.count:
            problems.add("the file has no data rows")
        preview = Preview(
            columns=tuple(c.name for c in mapping.columns),
            rows=tuple(preview_rows),
            total_rows=rows,
            sha256=reader.hexdigest(),
            mapping=tuple(zip(mapping.file_names, (c.name for c in mapping.columns), strict=True)),
        )
        notes = [
            f"{spec.mode.name} {rows:,} rows into {schema}.{spec.table}; columns: "
            + ", ".join(f"{f} → {t}" for f, t in preview.mapping)
            + f"; file SHA-256 {preview.sha256}"
        ]
        return Precheck(problems.summary(), preview, notes if not problems.count else [])

    def _columns(
        self, engine: Engine, ds: Datasource, schema: str, table: str
    ) -> list[TargetColumn]:
        try:
            inspector = sa.inspect(engine)
            if not inspector.has_table(table, schema=schema):
                raise NotFound(f"table {schema}.{table} does not exist in datasource {ds.name!r}")
            return [target_column(c) for c in inspector.get_columns(table, schema=schema)]
        except sa.exc.SQLAlchemyError as exc:
            raise Unavailable(
                f"datasource {ds.name!r} could not be read: {describe_db_error(exc)}"
            ) from None

    # -- run -----------------------------------------------------------------------------

    def run(self, task: Task, run_id: int, control: RunControl) -> RunOutcome:
        spec = task.import_spec
        if spec is None:
            raise RunFailed("the task has no import detail")
        ds = self.registry.get(task.datasource)
        schema = task.spec.database or ds.default_database()
        problems = write_permission_problems(ds, schema, spec.table)
        if problems:
            raise RunFailed("; ".join(problems))
        with self.store.read() as tx:
            preview = tx.preview(task.id)
        approved = preview.sha256 if preview else ""
        if not approved:
            raise RunFailed(
                "the task has no checked file (no SHA-256 was recorded); nothing was written"
            )
        writer = self.registry.writer_engine(ds)
        columns = self._columns(writer, ds, schema, spec.table)
        backup = RunBackup(self.objects, task, run_id, spec.table)
        # One read: the file is hashed as it is written, and the transaction commits only
        # when the whole file's SHA-256 is the approved one.
        with self.objects.open_reader(spec.object_key) as raw:
            reader = HashingReader(raw, self.limits.max_bytes)
            scan = _Scan(self, spec, columns, writer, schema, reader)
            try:
                # CSV text straight to PostgreSQL where it reads the text as the pre-check did.
                as_text = ds.backend == "postgresql" and spec.format is ExportType.CSV
                rows = scan.rows(Problems(), strict=True, as_text=as_text)
                first = next(rows, None)  # reads the header: the mapping is known
                assert scan.mapping is not None

                def approved_rows() -> Iterator[tuple[Any, ...]]:
                    if first is not None:
                        yield first[1]
                    for _number, values in rows:
                        yield values
                    reader.drain()
                    if reader.hexdigest() != approved:  # replaced while being read
                        raise RunFailed(_changed(approved, reader.hexdigest()))

                result = load_rows(
                    writer,
                    LoadTarget(
                        table=spec.table,
                        columns=tuple(c.name for c in scan.mapping.columns),
                        schema=schema,
                    ),
                    approved_rows(),
                    mode=spec.mode,
                    statement_timeout_s=ds.statement_timeout_s,
                    cancelled=control.cancelled,
                    backup=backup.open,
                    progress=control.progress,
                )
            except LoadCanceled as exc:
                raise RunFailed(str(exc)) from None
            except (LoadError, FileProblem, RunFailed) as exc:
                raise RunFailed(_why_failed(exc, reader, approved)) from None
        log.info(
            "import wrote %d rows (%d skipped, %d updated)",
            result.written,
            result.skipped,
            result.updated,
            extra={"task_id": task.id, "run_id": run_id},
        )
        return backup.outcome(result)


def write_permission_problems(ds: Datasource, schema: str, table: str) -> list[str]:
    """Why this datasource may not write `schema.table`, naming the config key; [] if it may."""
    key = f"datasources.{ds.name}"
    if ds.write_url is None:
        return [
            f"datasource {ds.name!r} takes no writes: set {key}.write_url (and write_password) "
            "to a database user that may write the tables imports go to"
        ]
    if not is_writable(ds.writable_tables, schema, table, ds.default_database()):
        allowed = ", ".join(ds.writable_tables) or "none"
        return [
            f"table {schema}.{table} is not writable: {key}.writable_tables does not match it "
            f"(writable: {allowed})"
        ]
    return []


class _Scan:
    """One read of the file: mapped and converted rows, problems counted as they come."""

    def __init__(
        self,
        handler: ImportHandler,
        spec: ImportSpec,
        columns: list[TargetColumn],
        engine: Engine,
        schema: str,
        reader: HashingReader,
    ) -> None:
        self.handler = handler
        self.spec = spec
        self.columns = columns
        self.engine = engine
        self.schema = schema
        self.reader = reader
        self.mapping: Mapping | None = None

    def rows(
        self, problems: Problems, *, strict: bool, as_text: bool = False
    ) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """Converted rows with their row numbers; a bad row is counted in `problems` and left
        out, or (strict, when running) fails the run at once."""
        limits = self.handler.limits
        spec = self.spec
        with open_rows(
            self.reader,
            spec.format,
            encoding=spec.encoding,
            sheet=spec.sheet,
            work_dir=self.handler.config.work_dir,
            max_unpacked=limits.max_unpacked_bytes,
        ) as file_rows:
            header: list[str] | None = None
            if not spec.no_header:
                first = next(file_rows, None)
                if first is None:
                    problems.add("the file is empty: it has no header row")
                    if strict:
                        raise RunFailed("the file is empty")
                    return
                header = [_cell_text(v) or "" for v in first[1]]
            mapping, mapping_problems = map_columns(
                header, spec.columns, self.columns, f"{self.schema}.{spec.table}"
            )
            for p in mapping_problems:
                problems.add(p)
            if mapping is None:
                if strict:
                    raise RunFailed("; ".join(mapping_problems))
                return
            self.mapping = mapping
            names = [c.name for c in mapping.columns]
            converters = [
                text_passer(c) if as_text and c.kind in PG_READS_TEXT else converter(c)
                for c in mapping.columns
            ]
            # The run reads the very file the pre-check passed: its keys were checked then.
            key = [] if strict else self._key_positions(names)
            convert_row = (
                text_row(mapping.columns, mapping.positions)
                if as_text and all(c.kind in PG_READS_TEXT for c in mapping.columns)
                else _row_converter(converters, mapping.positions)
            )
            if not key:
                yield from self._converted(
                    file_rows, mapping, converters, convert_row, problems, strict
                )
                return
            with SeenKeys(self.handler.config.work_dir) as seen:
                pending = _PendingRows(cells_per_row=len(names))
                try:
                    rows = self._converted(
                        file_rows, mapping, converters, convert_row, pending, strict
                    )
                    for row in rows:
                        pending.keep(row)
                        if pending.full():
                            yield from pending.flush(seen, key, names, problems)
                except FileProblem:
                    # What came before the unreadable part is reported as it would be without
                    # a key.
                    yield from pending.flush(seen, key, names, problems)
                    raise
                yield from pending.flush(seen, key, names, problems)

    def _converted(
        self,
        file_rows: Iterator[tuple[int, list[Any]]],
        mapping: Mapping,
        converters: list[Callable[[Any], Any]],
        convert_row: Callable[[list[Any]], tuple[Any, ...]],
        problems: Problems,
        strict: bool,
    ) -> Iterator[tuple[int, tuple[Any, ...]]]:
        limits = self.handler.limits
        names = [c.name for c in mapping.columns]
        positions = mapping.positions
        width = max(positions) + 1
        for count, (number, cells) in enumerate(file_rows, start=1):
            if count > limits.max_rows:
                message = (
                    f"the file has more than import.max_rows ({limits.max_rows:,}) rows: split it"
                )
                if strict:
                    raise RunFailed(message)
                problems.add(message)
                return
            if len(cells) < width:
                cells = [*cells, *([None] * (width - len(cells)))]
            try:
                values = convert_row(cells)
            except BadValue:
                # The slow path, for the row's every problem with its column.
                for name, convert, pos in zip(names, converters, positions, strict=True):
                    try:
                        convert(cells[pos])
                    except BadValue as exc:
                        if strict:
                            raise RunFailed(f"row {number}, column {name}: {exc}") from None
                        problems.value(number, name, cells[pos], str(exc))
                continue
            yield number, values

    def _key_positions(self, names: list[str]) -> list[int]:
        try:
            key = conflict_key(self.engine, self.schema, self.spec.table, names)
        except sa.exc.SQLAlchemyError:
            return []
        return [names.index(k) for k in key]


class _PendingRows(Problems):
    """Rows read and the problems found among them, in file order, until their batch of keys
    is checked: then rows and problems come out in the order they would without a key."""

    def __init__(self, cells_per_row: int) -> None:
        super().__init__()
        self.limit = max(1, min(KEY_BATCH_ROWS, KEY_BATCH_CELLS // cells_per_row))
        self.entries: list[tuple[int, tuple[Any, ...]] | str] = []

    def add(self, message: str) -> None:
        self.entries.append(message)

    def keep(self, row: tuple[int, tuple[Any, ...]]) -> None:
        self.entries.append(row)

    def full(self) -> bool:
        return len(self.entries) >= self.limit

    def flush(
        self, seen: SeenKeys, key: list[int], names: list[str], problems: Problems
    ) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """The batch's rows whose key came before become problems; the others are yielded."""
        entries, self.entries = self.entries, []
        digests = [hash(tuple([e[1][i] for i in key])) for e in entries if not isinstance(e, str)]
        repeated = iter(seen.repeated(digests))
        for entry in entries:
            if isinstance(entry, str):
                problems.add(entry)
            elif next(repeated):
                number, values = entry
                shown = ", ".join(str(values[i]) for i in key)
                problems.add(
                    f"row {number}: key ({', '.join(names[i] for i in key)}) = "
                    f"({shown[:100]}) appears earlier in the file; each key once"
                )
            else:
                yield entry


@dataclass
class RunBackup:
    """Where an UPSERT (an import's or a generation's) saves the rows it replaces: an object
    beside the run's files."""

    objects: ObjectStore
    task: Task
    run_id: int
    table: str
    size: int | None = None

    @property
    def filename(self) -> str:
        return f"{safe_name(self.table)}_task{self.task.id}_run{self.run_id}_replaced.csv"

    @property
    def key(self) -> str:
        return f"tasks/{self.task.id}/runs/{self.run_id}/{self.filename}"

    def outcome(self, result: LoadResult) -> RunOutcome:
        """The run's record: the write counts, and this backup if the write saved one."""
        saved = self.size is not None
        return RunOutcome(
            rows=result.written,
            rows_skipped=result.skipped,
            rows_updated=result.updated,
            backup_filename=self.filename if saved else "",
            backup_object_key=self.key if saved else "",
            backup_bytes=self.size or 0,
        )

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        content_type = "text/csv; charset=utf-8"
        with self.objects.open_writer(
            self.key, filename=self.filename, content_type=content_type
        ) as out:
            yield out
            size = out.tell()
        self.size = size


def _row_converter(
    converters: list[Callable[[Any], Any]], positions: tuple[int, ...]
) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The mapped cells in column order (the row itself when the file's columns are the
    table's, in order), each through its column's converter, in C loops."""
    if positions == tuple(range(len(positions))):
        return lambda cells: tuple(map(call, converters, cells))
    if len(positions) == 1:
        only, convert = positions[0], converters[0]
        return lambda cells: (convert(cells[only]),)
    picked = itemgetter(*positions)
    return lambda cells: tuple(map(call, converters, picked(cells)))


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else text_of(value)


def _why_failed(exc: Exception, reader: HashingReader, approved: str) -> str:
    """A file replaced after approval fails wherever it first differs (a value, its size,
    a duplicate key): then the whole file's SHA-256 says what happened."""
    try:
        reader.drain()
    except (FileProblem, OSError):
        return str(exc)
    digest = reader.hexdigest()
    return _changed(approved, digest) if digest != approved else str(exc)


def _changed(approved: str, digest: str) -> str:
    return (
        f"the uploaded file changed after it was checked (SHA-256 {digest[:12]}…, approved "
        f"{approved[:12] or 'none'}…); nothing was written: submit the file again"
    )
