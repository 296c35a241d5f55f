"""Test-data generation: the generators checked against the live table, the preview
approvers see, and the same rows again when the approved task runs.

`prepare` does the reading (the table's columns, the values `ref` columns pick from) and
hands the rest to the pure core in `service.domain.generators`. The pre-check and the run
both call it, with the same seed and, at the run, the generators the pre-check resolved,
so a run writes exactly the rows that were previewed; `rows_to_write` refuses to write when
the first rows no longer equal the preview (the referenced table or the columns changed).
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from service.app.imports import RunBackup, write_permission_problems
from service.app.kinds import Precheck, RunControl, RunFailed, RunOutcome
from service.config import Config
from service.datasources import Datasource, DatasourceRegistry
from service.domain.errors import InvalidRequest, WrongState
from service.domain.generators import (
    MAX_PARAM_CHARS,
    ColumnGenerator,
    Plan,
    RowSource,
    compile_rows,
    plan,
    render,
)
from service.domain.model import GenerateSpec, Preview, Task
from service.load import LoadError, LoadTarget, load_rows
from service.load.table_columns import ref_values, table_columns
from service.storage.base import ObjectStore
from service.store.repository import TaskStore
from woxqaq.generator_rules import MAX_RULES

if TYPE_CHECKING:
    from service.app.tasks import NewTask

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Prepared:
    """A generation checked against its table: the problems, or what it will write."""

    problems: list[str]
    plan: Plan | None = None  # the generators as they run, proposals included
    source: RowSource | None = None
    first_rows: list[tuple[Any, ...]] = field(default_factory=list)  # taken from `source`

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(g.column for g in self.plan.generators) if self.plan else ()

    def preview_rows(self) -> list[tuple[str | None, ...]]:
        return [tuple(render(v) for v in row) for row in self.first_rows]


def prepare(
    engine: Engine,
    schema: str,
    table: str,
    generators: Sequence[ColumnGenerator],
    *,
    rows: int,
    seed: int,
    today: date,
) -> Prepared:
    """Check `generators` against `schema.table` and take the first rows (the preview)."""
    columns = table_columns(engine, schema, table)
    planned, problems = plan(columns, generators, today)
    if problems:
        return Prepared(problems)
    refs = ref_values(engine, schema, planned.refs())
    source, final, problems = compile_rows(
        columns, planned, rows=rows, seed=seed, refs=refs, today=today
    )
    if problems or source is None:
        return Prepared(problems, final)
    return Prepared([], final, source, source.take(min(PREVIEW_ROWS, rows)))


def rows_to_write(
    prepared: Prepared, rows: int, approved_preview: Sequence[Sequence[str | None]]
) -> Iterator[tuple[Any, ...]]:
    """Every row of a prepared generation, the preview's first; WrongState when they are not
    the rows approvers saw."""
    if prepared.source is None:
        raise WrongState("; ".join(prepared.problems) or "nothing to generate")
    seen = [tuple(r) for r in approved_preview]
    if prepared.preview_rows() != seen:
        raise WrongState(
            "the rows generated now differ from the preview that was approved (the table, "
            "or a table its ref columns read, has changed since): submit the task again"
        )
    rest = prepared.source.batches(rows - len(prepared.first_rows), BATCH_ROWS)
    return itertools.chain(prepared.first_rows, itertools.chain.from_iterable(rest))


class GenerateHandler:
    """DATA_GENERATE tasks: validated at submit, pre-checked against the live table (read
    with the reader's credentials, as exports are), run through the one write path with the
    writer's."""

    def __init__(
        self,
        config: Config,
        registry: DatasourceRegistry,
        store: TaskStore,
        objects: ObjectStore,
        *,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.objects = objects
        self.today = today

    def validate(self, new: NewTask) -> None:
        spec = new.generate_spec
        if spec is None:
            raise InvalidRequest(
                "a DATA_GENERATE task needs its detail: set dgd (the table, rows…)"
            )
        if not spec.table.strip():
            raise InvalidRequest("dgd.table is empty: name the table to fill")
        if spec.rows <= 0:
            raise InvalidRequest(f"dgd.rows is {spec.rows}: ask for at least 1 row")
        if len(spec.columns) > MAX_RULES:
            raise InvalidRequest(f"{len(spec.columns)} column generators; the limit is {MAX_RULES}")
        for i, gen in enumerate(spec.columns, start=1):
            where = f"dgd.columns[{i}]"
            if not gen.column.strip():
                raise InvalidRequest(f"{where} has no column name: say which column it fills")
            if len(gen.column) > 200 or len(gen.kind) > 40 or len(gen.params) > 20:
                raise InvalidRequest(
                    f"{where} is too large: a column name, a kind and a few params"
                )
            if any(len(k) > 40 or len(v) > MAX_PARAM_CHARS for k, v in gen.params.items()):
                raise InvalidRequest(f"{where} has a parameter over {MAX_PARAM_CHARS:,} characters")
            if not math.isfinite(gen.null_ratio) or not 0 <= gen.null_ratio <= 1:
                raise InvalidRequest(f"{where}.null_ratio {gen.null_ratio} is not between 0 and 1")
        if len(spec.table) > 200 or len(new.spec.database) > 200:
            raise InvalidRequest("dgd.table and dgd.database take at most 200 characters")

    def precheck(self, new: NewTask, ds: Datasource) -> Precheck:
        spec = new.generate_spec
        assert spec is not None  # validate() ran first
        problems = self._guard_problems(ds, new.spec.database, spec)
        if problems:
            return Precheck(problems)
        seed = spec.seed or secrets.randbelow(2**63 - 1) + 1
        prepared = prepare(
            self.registry.engine(ds),  # reading: the reader, which may see a ref's table too
            new.spec.database or ds.default_database(),
            spec.table,
            spec.columns,
            rows=spec.rows,
            seed=seed,
            today=self.today(),
        )
        if prepared.problems or prepared.plan is None:
            return Precheck(prepared.problems)
        settled = replace(spec, seed=seed, columns=prepared.plan.generators)
        preview = Preview(
            columns=prepared.columns,
            rows=tuple(prepared.preview_rows()),
            total_rows=spec.rows,
        )
        notes = [
            f"seed {seed}; {spec.rows:,} rows, {spec.mode.name}",
            "; ".join(prepared.plan.describe().splitlines()),
        ]
        return Precheck([], preview, notes, generate_spec=settled)

    def _guard_problems(self, ds: Datasource, database: str, spec: GenerateSpec) -> list[str]:
        problems = []
        if not ds.allow_generate:
            problems.append(
                f"datasource {ds.name!r} does not take generated test data: set "
                f"datasources.{ds.name}.allow_generate = true (for test databases only)"
            )
        problems += write_permission_problems(ds, database or ds.default_database(), spec.table)
        cap = self.config.generate.max_rows
        if spec.rows > cap:
            problems.append(
                f"{spec.rows:,} rows asked for; generate.max_rows allows {cap:,}: ask for fewer"
            )
        return problems

    def run(self, task: Task, run_id: int, control: RunControl) -> RunOutcome:
        spec = task.generate_spec
        if spec is None or not spec.seed:
            raise RunFailed("this task has no pre-checked generation to run; submit it again")
        ds = self.registry.get(task.datasource)
        problems = self._guard_problems(ds, task.spec.database, spec)
        if problems:  # the configuration may have changed since the approval
            raise RunFailed("; ".join(problems))
        with self.store.read() as tx:
            approved = tx.preview(task.id)
        schema = task.spec.database or ds.default_database()
        prepared = prepare(
            self.registry.engine(ds), schema, spec.table, spec.columns, rows=spec.rows,
            seed=spec.seed, today=self.today(),
        )  # fmt: skip
        if prepared.problems:
            raise RunFailed(
                "the table no longer fits the approved generators: " + "; ".join(prepared.problems)
            )
        backup = RunBackup(self.objects, task, run_id, spec.table)
        try:
            rows = rows_to_write(prepared, spec.rows, approved.rows if approved else ())
            result = load_rows(
                self.registry.writer_engine(ds),
                LoadTarget(table=spec.table, columns=prepared.columns, schema=schema),
                rows,
                mode=spec.mode,
                statement_timeout_s=ds.statement_timeout_s,
                cancelled=control.cancelled,
                backup=backup.open,
                progress=control.progress,
            )
        except (WrongState, LoadError) as exc:
            raise RunFailed(str(exc)) from None
        log.info(
            "generation written",
            extra={"task_id": task.id, "run_id": run_id, "rows": result.written},
        )
        return backup.outcome(result)
