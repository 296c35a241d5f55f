"""The pre-check's part on the live server: functions resolved in the catalog, then EXPLAIN.

Runs in the export's own read-only transaction with a short statement timeout. The order
matters: PostgreSQL folds IMMUTABLE functions with constant arguments while planning, so
EXPLAIN of a call to a mislabelled user function would run it; the catalog verdict comes
first and EXPLAIN only follows a clean one. MariaDB evaluates constant expressions while
optimizing, stored functions included (an UPDATE inside one meets the read-only
transaction during EXPLAIN), so there too only a statement the rules accepted is EXPLAINed.
EXPLAIN otherwise plans the statement and runs nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.datasources import Datasource, describe_db_error
from service.domain import placeholders
from service.domain.functions import (
    CatalogFunction,
    FunctionName,
    judge_pg_functions,
    judge_pg_operators,
    read_pg_statement,
)
from service.domain.model import ExportSpec, Schedule
from service.export.engine import plan
from service.export.sources import ReadOnlySession, SourceError, mogrify, open_readonly, render

# Long enough to plan a large query on a busy server; a pre-check waits for nothing else.
PRECHECK_TIMEOUT_S = 10
# Tables of an export_all beyond which no estimate is made (one EXPLAIN each).
MAX_EXPLAINED = 50

# Every pg_proc entry a called name may resolve to (in the schema named, or in every schema
# the server searches for this session, pg_catalog included wherever search_path puts it),
# and the functions behind every operator of a name used: one round trip for both.
_PG_CALLABLES = """
WITH called(kind, schema, name) AS (
  SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])
), procs AS (
  SELECT c.kind, c.schema, c.name, p.oid FROM called c
  JOIN pg_proc p ON c.kind = 'f' AND p.proname = c.name
  JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE CASE WHEN c.schema = '' THEN n.nspname = ANY (current_schemas(true))
             ELSE n.nspname = c.schema END
  UNION ALL
  SELECT c.kind, c.schema, c.name, o.oprcode FROM called c
  JOIN pg_operator o ON c.kind = 'o' AND o.oprname = c.name
  JOIN pg_namespace n ON n.oid = o.oprnamespace
  WHERE CASE WHEN c.schema = '' THEN n.nspname = ANY (current_schemas(true))
             ELSE n.nspname = c.schema END
)
SELECT f.kind, f.schema, f.name, n.nspname, p.proname, p.oid < 16384, p.provolatile, l.lanname
FROM procs f
JOIN pg_proc p ON p.oid = f.oid
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
"""


@dataclass(frozen=True)
class LiveCheck:
    problems: tuple[str, ...] = ()
    estimated_rows: int | None = None


def check_live(
    engine: Engine,
    source: Datasource,
    spec: ExportSpec,
    *,
    schedule: Schedule,
    now: datetime | None = None,
) -> LiveCheck:
    """The catalog's verdict on the functions a query calls, then EXPLAIN of each statement
    the export would run (the query, or one per table); the database's own words when it
    refuses one or cannot be reached."""
    values = (
        placeholders.logical_values(spec.statement, schedule, now or datetime.now(UTC))
        if spec.is_sql
        else {}
    )
    with contextlib.ExitStack() as stack:
        try:
            session = stack.enter_context(open_readonly(engine, source.backend, PRECHECK_TIMEOUT_S))
        except sa.exc.SQLAlchemyError as exc:
            return LiveCheck((f"the datasource cannot be reached: {describe_db_error(exc)}",))
        try:
            if source.backend == "postgresql" and spec.is_sql:
                problems = _pg_catalog_problems(session, spec.statement, source.allowed_functions)
                if problems:
                    return LiveCheck(tuple(problems))
            parts = plan(spec, source, session, values)
            if len(parts) > MAX_EXPLAINED:
                return LiveCheck()  # a whole database: its tables' sizes say enough
            estimates = [_explain(session, *render(p.stmt, session.dialect)) for p in parts]
        except SourceError as exc:
            return LiveCheck((str(exc),))
        except (sa.exc.SQLAlchemyError, psycopg.Error, pymysql.err.MySQLError) as exc:
            return LiveCheck((f"the database refused the query: {describe_db_error(exc)}",))
    if any(e is None for e in estimates):
        return LiveCheck()
    return LiveCheck(estimated_rows=sum(e for e in estimates if e is not None))


def _pg_catalog_problems(
    session: ReadOnlySession, statement: str, allowed_functions: Collection[str]
) -> list[str]:
    read = read_pg_statement(placeholders.for_parsing(statement))
    if read.syntax_error:
        return [read.syntax_error]
    if read.problems:
        return list(read.problems)
    functions, operators = _resolve(session, read.functions, read.operators)
    return judge_pg_functions(read.functions, functions, allowed_functions) + judge_pg_operators(
        read.operators, operators
    )


Resolved = dict[FunctionName, list[CatalogFunction]]


def _resolve(
    session: ReadOnlySession,
    functions: Sequence[FunctionName],
    operators: Sequence[FunctionName],
) -> tuple[Resolved, Resolved]:
    """What the catalog says each called function and used operator may resolve to."""
    found: dict[str, Resolved] = {"f": defaultdict(list), "o": defaultdict(list)}
    named = [("f", n) for n in functions] + [("o", n) for n in operators]
    if named:
        rows = session.catalog_rows(
            _PG_CALLABLES,
            (
                [kind for kind, _ in named],
                [n.schema or "" for _, n in named],
                [n.name for _, n in named],
            ),
        )
        for kind, schema, name, nspname, proname, builtin, volatility, language in rows:
            found[kind][FunctionName(schema or None, name)].append(
                CatalogFunction(nspname, proname, bool(builtin), str(volatility), language)
            )
    return found["f"], found["o"]


def _explain(session: ReadOnlySession, sql: str, args: Any) -> int | None:
    """The planner's row estimate; the statement is planned, never run."""
    if session.backend == "postgresql":
        rows = session.catalog_rows("EXPLAIN (FORMAT JSON) " + mogrify(session.raw, sql, args))
        plan = rows[0][0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])
    if session.backend == "mysql":
        return _mysql_estimate(session, sql, args)
    return None


def _mysql_estimate(session: ReadOnlySession, sql: str, args: Any) -> int | None:
    """MySQL's EXPLAIN gives rows per table of each select: the outer select's join is their
    product, reduced by the `filtered` percentage where the server gives one."""
    cur = session.raw.cursor()
    try:
        cur.execute(f"EXPLAIN {sql}", args)
        names = [d[0].lower() for d in cur.description or ()]
        rows = [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
    finally:
        cur.close()
    outer = [r for r in rows if str(r.get("id")) == "1" and r.get("rows") is not None]
    if not outer:
        return None
    estimate = 1.0
    for r in outer:
        estimate *= float(r["rows"]) * float(r.get("filtered") or 100) / 100
    return round(estimate)
