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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine

from service.domain.errors import WrongState
from service.domain.generators import ColumnGenerator, Plan, RowSource, compile_rows, plan, render
from service.load.table_columns import ref_values, table_columns

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
