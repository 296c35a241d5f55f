"""Reading from a datasource, read-only by construction, rows streaming in batches.

Every export runs in a read-only transaction with a statement timeout, set by the
dialect's own means, so a statement that slipped past the pre-check still cannot write or
run forever. Rows come from the driver's server-side cursor (psycopg named cursor, PyMySQL
SSCursor, sqlite3's lazy cursor) as plain driver values, so memory does not grow with the
row count and SQLAlchemy's per-type result processing (which would, for instance, reject a
malformed date string in SQLite) stays out of the way.

CSV can also be rendered by the server (`server_csv`), in the same transaction, with the
query wrapped so that its output is the canonical text of `writers.py`: PostgreSQL's
`COPY (query) TO STDOUT`, and for MySQL/MariaDB one CSV line a row built in SQL (its
quotes finished by the client, see `_QUOTE_MARK`), read as one binary value (PyMySQL
parses one value a row instead of one a cell: the driver's per-cell Python work is what
made MySQL exports several times slower than its client), and those values a socket read
at a time (`mysql_wire`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler

from service.domain import placeholders
from service.export.mysql_wire import NullValue, single_values
from service.export.values import FORMULA_STARTS, ServerText

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A problem with what was asked of the source (unknown table, missing parameter)."""


class Timeout(Exception):
    """The statement ran longer than the statement timeout."""


class Canceled(Exception):
    """The export was canceled while a statement ran."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str  # the database's type name where the driver says, else ""
    type_code: Any = None


@dataclass(frozen=True)
class _CsvSink:
    """Where server-rendered CSV goes: the columns first, then records, with progress."""

    on_columns: Callable[[list[ColumnInfo]], None]
    write: Callable[[bytes], None]
    tick: Callable[[int], None]
    escape_formulas: bool = False


# --- rendering --------------------------------------------------------------------------


def render(stmt: sa.Executable, dialect: Dialect) -> tuple[str, Any]:
    """SQL text and driver parameters for `stmt`, bind processors applied.

    The statement runs on a raw driver cursor (see the module docstring), so what
    SQLAlchemy would do at execution happens here: IN lists expanded, values converted.
    """
    clause = cast(sa.ClauseElement, stmt)  # every statement built here is a clause
    compiled = cast(
        SQLCompiler,
        clause.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}),
    )
    params = dict(compiled.construct_params() or {})
    for bind, name in compiled.bind_names.items():
        if name in params:
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                params[name] = proc(params[name])
    if compiled.positional:
        return str(compiled), tuple(params[n] for n in compiled.positiontup or ())
    return str(compiled), params


def sql_statement(
    statement: str,
    params: Mapping[str, object] | None,
    dialect: str = "",
    wall_zone: tzinfo | None = None,
) -> sa.TextClause:
    """A SQL-mode query with its `{{run_date}}`-style placeholders bound as parameters.

    Every other colon stays text (`':x'`, `'10:30'`), so a query means what it says. It
    runs wrapped (`DECLARE`, `COPY (...)`, a subquery), so a trailing `;` or comment is cut
    off first; `dialect` is the sqlglot dialect whose tokenizer finds the end. `wall_zone`
    is the zone of the session's wall times (`ReadOnlySession.wall_zone`).
    """
    text = sa.text(placeholders.to_bind_params(_statement_body(statement, dialect)))
    wanted = set(text._bindparams)  # the names the text uses
    given = {k: _for_dialect(v, dialect, wall_zone) for k, v in (params or {}).items()}
    missing = sorted(wanted - given.keys())
    if missing:
        names = ", ".join(f"{{{{{m}}}}}" for m in missing)
        raise SourceError(f"The query uses {names} but no value was given for it.")
    return text.bindparams(
        *(sa.bindparam(k, v, type_=_AsGiven()) for k, v in given.items() if k in wanted)
    )


def _for_dialect(value: object, dialect: str, wall_zone: tzinfo | None = None) -> object:
    """An instant as the dialect compares it rightly with its date and time types.

    PostgreSQL gets the instant itself (a timestamptz; the session's TimeZone turns it into
    a wall time where it meets a `timestamp`). MySQL has no instant literal: the session's
    wall time of it, which its `TIMESTAMP` columns are compared in. SQLite keeps dates as
    text: the wall time in the text form they are stored in."""
    if isinstance(value, datetime) and value.tzinfo is not None and dialect != "postgres":
        value = value.astimezone(wall_zone or value.tzinfo).replace(tzinfo=None)
    if dialect == "sqlite" and isinstance(value, datetime):
        return value.isoformat(" ")
    if dialect == "sqlite" and isinstance(value, date):
        return value.isoformat()
    return value


def _statement_body(statement: str, dialect: str) -> str:
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect or None).tokenize(statement)
    except SqlglotError:
        return statement.strip().rstrip(";")  # the database will say what is wrong
    body = [t for t in tokens if t.token_type is not TokenType.SEMICOLON]
    return statement[: body[-1].end + 1] if body else statement.strip()


class _AsGiven(sa.types.TypeDecorator[Any]):
    """A query parameter as the caller gave it: no type inferred, no cast rendered, so the
    database coerces `'2024-01-31'` against a date column as it would a literal."""

    impl = sa.types.NullType
    cache_ok = True


# --- the read-only session --------------------------------------------------------------


class ReadOnlySession:
    """One connection inside a read-only transaction with a statement timeout.

    `zone` is the task's timezone: timestamps with a zone come out in it. `wall_zone` is
    what the session's own wall times mean (naive values it reads and is given): `zone`
    itself, or on a MySQL server without time zone tables, `zone`'s offset at the run."""

    def __init__(
        self,
        conn: Connection,
        backend: str,
        timeout_s: int,
        zone: ZoneInfo | None = None,
        wall_zone: tzinfo | None = None,
    ) -> None:
        self.conn = conn
        self.backend = backend
        self.timeout_s = timeout_s
        self.zone = zone or ZoneInfo("UTC")
        self.wall_zone = wall_zone or self.zone
        self.dialect: Dialect = conn.dialect
        self.raw: Any = conn.connection.driver_connection
        self.is_mariadb = bool(getattr(conn.dialect, "is_mariadb", False))

    # reflection ------------------------------------------------------------------------

    def table_names(self, schema: str) -> list[str]:
        inspector = sa.inspect(self.conn)
        if schema not in inspector.get_schema_names():
            raise SourceError(f"Database `{schema}` does not exist.")
        return sorted(inspector.get_table_names(schema=schema))

    def reflect(self, name: str, schema: str) -> sa.Table:
        try:
            return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=self.conn)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"Table `{name}` does not exist in database `{schema}`.") from None

    def catalog_rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """A small catalog query (DDL) on a plain cursor, in the driver's paramstyle."""
        cur = self.raw.cursor()
        try:
            if params:
                cur.execute(sql, tuple(params))
            else:
                cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    # rows ------------------------------------------------------------------------------

    def stream(self, stmt: sa.Executable) -> RowStream:
        sql, args = render(stmt, self.dialect)
        if self.backend == "postgresql":
            return _PgStream(self, mogrify(self.raw, sql, args))
        if self.backend == "mysql":
            import pymysql.cursors

            _mysql_require_query(self.raw, sql, args)
            cur = self.raw.cursor(pymysql.cursors.SSCursor)
            cur.execute(sql, args)
            _require_result(cur)
            columns = _mysql_columns(cur)
            return RowStream(cur, columns, self._mysql_instants(columns))
        cur = self.raw.cursor()
        cur.execute(sql, args)
        _require_result(cur)
        return RowStream(cur, [ColumnInfo(d[0], "") for d in cur.description or ()])

    def _mysql_instants(self, columns: list[ColumnInfo]) -> RowConverter | None:
        """MySQL hands TIMESTAMP values over as the session's wall times: make them the
        instants they are, in the task's timezone, as PostgreSQL gives a timestamptz."""
        from pymysql.constants import FIELD_TYPE

        at = [i for i, c in enumerate(columns) if c.type_code == FIELD_TYPE.TIMESTAMP]
        if not at:
            return None
        wall, zone = self.wall_zone, self.zone

        def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
            cells = list(row)
            for i in at:
                cells[i] = session_instant(cells[i], wall, zone)
            return tuple(cells)

        return convert

    def describe(self, stmt: sa.Executable) -> list[ColumnInfo]:
        """The result's columns without reading its rows."""
        if self.backend == "mysql":
            # Closing an SSCursor reads the rest of the result: ask for none at all.
            sql, args = render(stmt, self.dialect)
            cur = self.raw.cursor()
            try:
                cur.execute(f"SELECT * FROM (\n{as_derived_table(sql)}\n) AS q LIMIT 0", args)
                return _mysql_columns(cur)
            finally:
                cur.close()
        s = self.stream(stmt)  # PostgreSQL's DECLARE plans but does not run the query
        s.close()
        return s.columns

    # CSV rendered by the server ------------------------------------------------------------

    def server_csv(
        self,
        stmt: sa.Executable,
        on_columns: Callable[[list[ColumnInfo]], None],
        write: Callable[[bytes], None],
        tick: Callable[[int], None],
        *,
        escape_formulas: bool = False,
    ) -> int | None:
        """Stream the result as canonical CSV records (no header) through `write`, rendered
        by the database (PostgreSQL COPY; MySQL/MariaDB one CSV line a row), so no value
        passes through Python one by one.

        `on_columns` hears the result's columns before the first record. Returns the row
        count, or None (having written nothing) when a column's type has no SQL rendering
        of the canonical text, or the backend none at all: the caller then reads rows.
        """
        by_backend = {"postgresql": self._pg_copy_csv, "mysql": self._mysql_csv}
        render_csv = by_backend.get(self.backend)
        if render_csv is None:
            return None
        return render_csv(stmt, _CsvSink(on_columns, write, tick, escape_formulas))

    def _pg_copy_csv(self, stmt: sa.Executable, sink: _CsvSink) -> int | None:
        on_columns, write, tick = sink.on_columns, sink.write, sink.tick
        escape_formulas = sink.escape_formulas
        sql, args = render(stmt, self.dialect)
        query = mogrify(self.raw, sql, args)
        probe = _PgStream(self, query)  # DECLARE: plans, runs nothing
        probe.close()
        exprs = []
        for i, col in enumerate(probe.columns):
            expr = _pg_canonical_expr(self.raw, f'q."c{i}"', col.type_code, self.zone)
            if expr is None:
                log.info("export reads rows: no COPY rendering for type %s", col.type_name)
                return None
            if escape_formulas and _pg_is_text(self.raw, col.type_code):
                expr = _pg_escape_formula(expr)
            exprs.append(expr)
        on_columns(probe.columns)
        if not probe.columns:
            return 0
        aliases = ", ".join(f'"c{i}"' for i in range(len(probe.columns)))
        copy = (
            f"COPY (SELECT {', '.join(exprs)} FROM (\n{query}\n) AS q({aliases})) "
            "TO STDOUT WITH (FORMAT csv)"
        )
        rows = 0
        with self.raw.cursor() as cur, cur.copy(copy) as cp:
            pending: list[bytes] = []
            size = 0
            for chunk in cp:
                # PostgreSQL sends one message per row, ending in LF; RFC 4180 wants CRLF.
                # Newlines inside quoted values stay as they are on both paths.
                pending.append(bytes(chunk[:-1]))
                size += len(chunk)
                if size >= 1 << 20:
                    rows += len(pending)
                    write(b"\r\n".join(pending) + b"\r\n")
                    pending.clear()
                    size = 0
                    tick(rows)
            if pending:
                rows += len(pending)
                write(b"\r\n".join(pending) + b"\r\n")
        tick(rows)
        return rows

    def _mysql_csv(self, stmt: sa.Executable, sink: _CsvSink) -> int | None:
        import pymysql.cursors

        if sink.escape_formulas:
            return None  # the row path makes formula-like text inert

        on_columns, write, tick = sink.on_columns, sink.write, sink.tick
        sql, args = render(stmt, self.dialect)
        _mysql_require_query(self.raw, sql, args)
        probe = self.raw.cursor()
        try:
            probe.execute(f"SELECT * FROM (\n{sql}\n) AS q LIMIT 0", args)
            columns = _mysql_columns(probe)
            description = probe.description
            fields = getattr(getattr(probe, "_result", None), "fields", None) or []
            names = [str(d[0]) for d in description]
            order = _mysql_outer_order(sql, names)
            if order is None:
                log.info("export reads rows: the query orders by more than its columns")
                return None
            # A column's charset follows from its type, not its values: asked of one row of
            # NULLs, with the query planned but not run. (The result's metadata gives the
            # charset the client reads in, not the one the server holds the text in.)
            charsets = ", ".join(f"CHARSET({_mysql_ref(n)})" for n in names)
            probe.execute(
                f"SELECT {charsets} FROM (SELECT 1) AS one LEFT JOIN "
                f"(SELECT * FROM (\n{sql}\n) AS q LIMIT 0) AS q ON TRUE",
                args,
            )
            record = _mysql_csv_record(description, fields, probe.fetchone())
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] in _MYSQL_NOT_WRAPPABLE:
                return None  # two columns of one name, or SELECT options, in a derived table
            raise
        finally:
            probe.close()
        if record is None:
            return None
        cur = self.raw.cursor(pymysql.cursors.SSCursor)
        rows = 0
        try:
            cur.execute(f"SELECT CAST({record} AS BINARY) FROM (\n{sql}\n) AS q{order}", args)
            on_columns(columns)  # only now: the row path writes the header otherwise
            with contextlib.closing(single_values(cur)) as batches:
                for batch in batches:
                    lines = _mysql_quotes_in_place(b"\r\n".join(batch) + b"\r\n", rows, len(batch))
                    rows += len(batch)
                    write(lines)
                    tick(rows)
        except NullValue as exc:
            raise SourceError(
                f"Row {exc.before + 1:,} is longer as one CSV line than the server's "
                "max_allowed_packet allows: ask for it to be raised, or leave its widest "
                "columns out."
            ) from None
        finally:
            cur.close()
        return rows


RowConverter = Callable[[tuple[Any, ...]], tuple[Any, ...]]


def session_instant(value: object, wall_zone: tzinfo, zone: ZoneInfo) -> object:
    """A naive wall time of the session (a MySQL TIMESTAMP) as the instant in `zone`.

    In a repeated autumn hour a wall time names two instants: the first is taken. Values
    that are not times (MySQL's zero date comes as text) stay as they are."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=wall_zone).astimezone(zone)
    return value


class RowStream:
    def __init__(
        self, cursor: Any, columns: list[ColumnInfo], convert: RowConverter | None = None
    ) -> None:
        self.cursor = cursor
        self.columns = columns
        self._convert = convert

    def batches(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        fetch = self.cursor.fetchmany
        convert = self._convert
        while True:
            rows = fetch(size)
            if not rows:
                return
            yield rows if convert is None else [convert(r) for r in rows]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cursor.close()


class _PgStream(RowStream):
    def __init__(self, session: ReadOnlySession, query: str) -> None:
        from psycopg.pq import Format

        cur = session.raw.cursor(name=f"woxqaq_{uuid.uuid4().hex[:12]}")
        # JSON and intervals as the server's own text: an interval's months and days are
        # not a number of seconds, and JSON re-serialised would differ.
        for name in ("json", "jsonb", "interval"):
            cur.adapters.register_loader(name, _ServerTextLoader)
        # Dates Python cannot hold (infinity, BC, after 9999) as the server's text.
        for name in ("date", "timestamp", "timestamptz"):
            cur.adapters.register_loader(
                name,
                _or_server_text(cur.adapters.get_loader(cur.adapters.types[name].oid, Format.TEXT)),
            )
        cur.execute(query)
        columns = [ColumnInfo(c.name, c.type_display, c.type_code) for c in cur.description or ()]
        super().__init__(cur, columns)


def _pg_text(data: Any) -> ServerText:
    return ServerText(bytes(data).decode("utf-8"))


class _ServerTextLoader(psycopg.adapt.Loader):
    def load(self, data: Any) -> ServerText:
        return _pg_text(data)


def _or_server_text(loader: type[psycopg.adapt.Loader] | None) -> type[psycopg.adapt.Loader]:
    """`loader`, but a value it cannot load (out of Python's range) as the server's text."""
    if loader is None:
        return _ServerTextLoader

    class OrServerText(psycopg.adapt.Loader):
        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            assert loader is not None
            self._load = loader(oid, context).load

        def load(self, data: Any) -> Any:
            try:
                return self._load(data)
            except psycopg.DataError:
                return _pg_text(data)

    return OrServerText


_MYSQL_DUPLICATE_COLUMN = 1060
_MYSQL_SYNTAX_ERROR = 1064


# Options of a SELECT that change how it runs, never what it returns. MariaDB refuses them
# in a derived table (error 1234), so they are left out where the query is wrapped for a
# check; the query itself runs as written.
_MYSQL_SELECT_OPTIONS = frozenset(
    {"HIGH_PRIORITY", "STRAIGHT_JOIN", "SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT",
     "SQL_CACHE", "SQL_NO_CACHE", "SQL_CALC_FOUND_ROWS"}
)  # fmt: skip
_MYSQL_SELECT_QUANTIFIERS = frozenset({"ALL", "DISTINCT", "DISTINCTROW"})


def as_derived_table(sql: str) -> str:
    """`sql` with its select options cut out, so that it can stand in `FROM (…) AS q`."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tokens = sqlglot.Dialect.get_or_raise("mysql").tokenize(sql)
    except SqlglotError:
        return sql  # the server will say what is wrong with it
    cuts: list[tuple[int, int]] = []
    after_select = False
    for token in tokens:
        word = token.text.upper()
        if word == "SELECT":
            after_select = True
        elif after_select and word in _MYSQL_SELECT_OPTIONS:
            cuts.append((token.start, token.end + 1))
        elif not (after_select and word in _MYSQL_SELECT_QUANTIFIERS):
            after_select = False
    for start, end in reversed(cuts):
        sql = sql[:start] + " " + sql[end:]
    return sql


def _mysql_outer_order(sql: str, names: Sequence[str]) -> str | None:
    """The ORDER BY that keeps `sql`'s order when its rows are selected from it as derived
    table `q` (MariaDB drops a derived table's ORDER BY), over q's columns `names`: "" when
    the query has none of its own, None when a key is not one of its columns (an
    expression, a column left out of the result) and only the query itself can order."""
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise("mysql").tokenize(sql)
    except SqlglotError:
        return None
    depth, start = 0, -1
    for i, token in enumerate(tokens):
        if token.token_type is TokenType.L_PAREN:
            depth += 1
        elif token.token_type is TokenType.R_PAREN:
            depth -= 1
        elif token.token_type is TokenType.ORDER_BY and depth == 0:
            start = i + 1  # a subquery's, a window's, a GROUP_CONCAT's are not the query's
    if start < 0:
        return ""
    keys: list[list[Any]] = [[]]
    for token in tokens[start:]:
        if token.token_type is TokenType.LIMIT:
            break  # the query keeps its ORDER BY and LIMIT: they pick its rows
        if token.token_type is TokenType.COMMA:
            keys.append([])
        else:
            keys[-1].append(token)
    by_name = {n.lower(): n for n in names}
    ordered = []
    for key in keys:
        direction = ""
        if key and key[-1].token_type in (TokenType.ASC, TokenType.DESC):
            direction = " DESC" if key.pop().token_type is TokenType.DESC else ""
        if len(key) != 1:
            return None
        word = key[0]
        if word.token_type is TokenType.NUMBER and word.text.isdigit():
            if not 1 <= int(word.text) <= len(names):
                return None
            name = names[int(word.text) - 1]
        elif word.token_type in (TokenType.VAR, TokenType.IDENTIFIER):
            # MySQL reads an ORDER BY name as the result's column of that name first.
            if word.text.lower() not in by_name or len(by_name) != len(names):
                return None
            name = by_name[word.text.lower()]
        else:
            return None
        ordered.append("q.`" + name.replace("`", "``").replace("%", "%%") + "`" + direction)
    return " ORDER BY " + ", ".join(ordered)


def _mysql_require_query(raw: Any, sql: str, args: Any) -> None:
    """DDL and admin statements commit MySQL's read-only transaction implicitly and then run;
    SELECT … INTO OUTFILE writes files whatever the transaction. Neither parses as a derived
    table, so a statement runs only once EXPLAIN has accepted it as one (planned, not run)."""
    import pymysql

    cur = raw.cursor()
    try:
        cur.execute(f"EXPLAIN SELECT 1 FROM (\n{as_derived_table(sql)}\n) AS q", args)
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        # Columns sharing a name are refused only after the query has parsed as one.
        if code == _MYSQL_DUPLICATE_COLUMN:
            return
        if code == _MYSQL_SYNTAX_ERROR:
            raise SourceError(
                "Only a query (SELECT …) can be exported, and the database does not read "
                f"this statement as one: {exc.args[1] if len(exc.args) > 1 else exc}"
            ) from None
        raise
    finally:
        cur.close()


def _require_result(cursor: Any) -> None:
    """A statement without a result set (SELECT … INTO, ATTACH, a PRAGMA that sets) is not a
    query: it is refused rather than exported as an empty file."""
    if cursor.description is None:
        with contextlib.suppress(Exception):
            cursor.close()
        raise SourceError(
            "The statement returned no rows or columns: only a query can be exported."
        )


def mogrify(raw: Any, sql: str, args: Any) -> str:
    """Bind the values into the text with psycopg's own quoting (COPY takes no parameters)."""
    import psycopg

    return psycopg.ClientCursor(raw).mogrify(sql, args)


# Canonical text in SQL, for PostgreSQL types psycopg loads to a known Python type.
_PG_AS_IS = {
    20,
    21,
    23,
    26,  # int8 int2 int4 oid
    1700,
    701,  # numeric, float8 (extra_float_digits=1: shortest round-trip)
    25,
    1043,
    1042,
    19,
    18,  # text varchar bpchar name "char"
    1082,  # date (DateStyle ISO)
    114,
    3802,  # json jsonb
    2950,
    17,  # uuid, bytea (bytea_output hex)
}


def _pg_timestamp(x: str) -> str:
    # DateStyle ISO prints `2024-01-31 13:45:00.5` (fraction without trailing zeros, as
    # the canonical form). Cheaper than to_char.
    return (
        f"CASE WHEN isfinite({x}) AND {x} >= '0001-01-01' "
        f"THEN replace({x}::text, ' ', 'T') ELSE {x}::text END"
    )


def _pg_timestamptz(x: str, zone: ZoneInfo) -> str:
    """A timestamptz in the session's TimeZone (the task's) with its offset as +HH:MM.

    PostgreSQL prints the offset as +08, +05:30 or +08:05:43 (a historic local mean time).
    A regular expression fixes any of them, but costs a second per million rows: times
    since 1970 take the short way when the zone's offsets since then are all whole hours
    (append ':00') or none is (keep it)."""
    fixed = f"regexp_replace(replace({x}::text, ' ', 'T'), '([+-][0-9]{{2}})$', '\\1:00')"
    suffix = _whole_hours_suffix(zone)
    if suffix is not None:
        short = f"replace({x}::text, ' ', 'T')" + (f" || '{suffix}'" if suffix else "")
        fixed = f"CASE WHEN {x} >= '1970-01-01T00:00:00Z' THEN {short} ELSE {fixed} END"
    return f"CASE WHEN isfinite({x}) AND {x} >= '0001-01-01' THEN {fixed} ELSE {x}::text END"


def _whole_hours_suffix(zone: ZoneInfo) -> str | None:
    """':00' when every offset `zone` has had since 1970 is whole hours, '' when none is,
    None when both occur (its offsets sampled twice a month up to 2100)."""
    whole = {
        (zone.utcoffset(datetime(year, month, day)) or timedelta(0)).total_seconds() % 3600 == 0
        for year in range(1970, 2101)
        for month in range(1, 13)
        for day in (1, 16)
    }
    if whole == {True}:
        return ":00"
    return "" if whole == {False} else None


_PG_TEXT = {25, 1043, 1042, 19, 18}  # text varchar bpchar name "char"


def _pg_is_text(raw: Any, oid: int) -> bool:
    """Text as the row path sees it: character types and types read as their text (enums,
    domains over text, types psycopg has no loader for)."""
    from psycopg.pq import Format

    return oid in _PG_TEXT or raw.adapters.get_loader(oid, Format.TEXT) is None


def _pg_escape_formula(expr: str) -> str:
    """`values.escape_formula` in SQL."""
    quote = "''''"  # an SQL string literal holding one '
    starts = ", ".join(f"'{c}'" for c in FORMULA_STARTS)
    return f"CASE WHEN left({expr}, 1) IN ({starts}) THEN {quote} || {expr} ELSE {expr} END"


def _pg_canonical_expr(raw: Any, x: str, oid: int, zone: ZoneInfo) -> str | None:
    if oid in _PG_AS_IS:
        return x
    if oid == 16:  # bool: 'true'/'false' (COPY would say t/f)
        return f"{x}::text"
    if oid == 700:  # psycopg parses float4's text into a double: print that double
        return f"{x}::text::float8"
    if oid == 1114:
        return _pg_timestamp(x)
    if oid == 1184:
        return _pg_timestamptz(x, zone)
    if oid in (1083, 1186):  # time; interval in IntervalStyle postgres
        return f"{x}::text"
    from psycopg.pq import Format

    if raw.adapters.get_loader(oid, Format.TEXT) is None:
        return x  # no loader: psycopg hands over the server's text, so COPY's text is it
    return None


_MYSQL_TYPES = {
    "LONGLONG": "BIGINT",
    "LONG": "INT",
    "SHORT": "SMALLINT",
    "TINY": "TINYINT",
    "INT24": "MEDIUMINT",
    "NEWDECIMAL": "DECIMAL",
    "VAR_STRING": "VARCHAR",
    "STRING": "CHAR",
    "NEWDATE": "DATE",
    "BLOB": "TEXT",
    "TINY_BLOB": "TINYTEXT",
    "MEDIUM_BLOB": "MEDIUMTEXT",
    "LONG_BLOB": "LONGTEXT",
}
_MYSQL_BINARY = {"TEXT": "BLOB", "TINYTEXT": "TINYBLOB", "MEDIUMTEXT": "MEDIUMBLOB",
                 "LONGTEXT": "LONGBLOB", "VARCHAR": "VARBINARY", "CHAR": "BINARY"}  # fmt: skip


def _mysql_columns(cursor: Any) -> list[ColumnInfo]:
    from pymysql.constants import FIELD_TYPE, FLAG

    names = {v: k for k, v in vars(FIELD_TYPE).items() if isinstance(v, int)}
    fields = getattr(getattr(cursor, "_result", None), "fields", None) or []
    cols = []
    for i, d in enumerate(cursor.description or ()):
        name, code, _, _, prec, scale, _ = d[:7]
        kind = names.get(code, "")
        type_name = _MYSQL_TYPES.get(kind, kind)
        field = fields[i] if i < len(fields) else None
        if field is not None:
            if field.charsetnr == 63:  # the binary character set: bytes, not text
                type_name = _MYSQL_BINARY.get(type_name, type_name)
            unsigned = bool(field.flags & FLAG.UNSIGNED)
            if type_name == "DECIMAL" and prec:
                # the display length counts the sign and the decimal point
                digits = prec - (0 if unsigned else 1) - (1 if scale else 0)
                type_name = f"DECIMAL({digits},{scale})"
            if unsigned:
                type_name += " UNSIGNED"
        cols.append(ColumnInfo(name, type_name, code))
    return cols


# One CSV line a row, built by MySQL/MariaDB in the canonical forms of `writers.py`: what
# the row path would write, byte for byte. The server's text already is the canonical form
# of integers, decimals (exact, with their scale), dates, TIME and JSON; timestamps need a
# `T` and the fraction without trailing zeros; binary strings are hex. FLOAT/DOUBLE (the
# server's shortest digits are not Python's layout), BIT and unknown types go the row path.
# CR and LF stand in the SQL text as themselves, which reads the same whatever sql_mode
# says about backslashes.
_MYSQL_AS_IS = {1, 2, 3, 8, 9, 13, 0, 246, 10, 14, 6}  # integers, YEAR, decimals, dates, NULL
_MYSQL_TEXT = {15, 245, 247, 248, 249, 250, 251, 252, 253, 254}  # strings, JSON, ENUM, SET
_MYSQL_DATETIME = {12}  # DATETIME; TIMESTAMP is shown in the task's timezone: the row path
_MYSQL_NOT_WRAPPABLE = {1060, 1234}  # duplicate column name; SELECT option placement
_MYSQL_TIME = 11
_MYSQL_GEOMETRY = 255
_BINARY_CHARSET = 63
_CSV_SPECIAL = "'[,\"\r\n]'"  # a regular expression of the characters that make quotes
# `\x` in hex: it reads the same whatever sql_mode says about backslashes.
_BACKSLASH_X = "CONVERT(0x5c78 USING ascii)"


def _mysql_ref(name: str) -> str:
    """The derived table's column `name` in SQL; it goes through the driver's %-formatting,
    as the query's own text does."""
    return "q.`" + name.replace("`", "``").replace("%", "%%") + "`"


def _mysql_csv_record(
    description: Sequence[Any], fields: Sequence[Any], charsets: Sequence[str | None]
) -> str | None:
    """The expression rendering one whole CSV record, or None when a column's type has no
    rendering in SQL. `charsets` are the columns' own, as CHARSET() gives them."""
    if len(fields) != len(description):
        return None
    single = len(description) == 1
    cells = []
    for d, field, charset in zip(description, fields, charsets, strict=True):
        code, scale = d[1], d[5]
        x = _mysql_ref(str(d[0]))
        binary = field.charsetnr == _BINARY_CHARSET
        if (code in _MYSQL_TEXT or code == _MYSQL_GEOMETRY) and binary:
            cells.append(f"IF({x} IS NULL, '', CONCAT({_BACKSLASH_X}, LOWER(HEX({x}))))")
        elif code in _MYSQL_TEXT:
            if charset not in _UTF8_BYTES:
                x = f"CONVERT({x} USING utf8mb4)"
            cells.append(_mysql_quoted(x, single))
        elif code in _MYSQL_AS_IS:
            cells.append(f"IFNULL({x}, '')")  # as text, as CAST would (at 2/3 of its cost)
        elif code in _MYSQL_DATETIME or code == _MYSQL_TIME:
            text = f"CAST({x} AS CHAR)"
            if scale:  # the fraction without trailing zeros (and without a bare point)
                text = f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text}))"
            if code in _MYSQL_DATETIME:
                # Zero dates stay as the server writes them, as the driver hands them over.
                text = (
                    f"IF(YEAR({x}) = 0 OR MONTH({x}) = 0 OR DAYOFMONTH({x}) = 0, "
                    f"CAST({x} AS CHAR), REPLACE({text}, ' ', 'T'))"
                )
            cells.append(f"IFNULL({text}, '')")
        else:
            return None
    return f"CONCAT_WS(',', {', '.join(cells)})"


# Charsets whose bytes are UTF-8's for every text they can hold.
_UTF8_BYTES = {"utf8mb4", "utf8mb3", "utf8", "ascii"}

# A cell that needs quotes comes from the server between two bytes that UTF-8 text never
# holds, its own quotes not yet doubled; the client doubles every quote of the lines and
# turns the marks into quotes: two passes over bytes, in C. Only such cells hold a quote
# (numbers, dates and hex never do). Doubling on the server (a REPLACE, which copies each
# quoted cell) was a fifth of its work. The mark makes the line binary, so text that is
# not UTF-8 is converted a cell at a time.
_QUOTE_MARK = b"\xfe"
_SQL_QUOTE_MARK = "CAST(0xFE AS BINARY)"


def _mysql_quoted(text: str, single: bool) -> str:
    """A text cell: marked for quotes when empty or holding a comma, quote, CR or LF (and,
    alone on its line, when it is `\\.`); NULL is an empty, unquoted field.

    Emptiness is asked of the byte length, which the server has at hand (CHAR_LENGTH counts
    the characters, a tenth of a text cell's cost), and is not `= ''`, which holds for
    spaces too."""
    needs = f"LENGTH({text}) = 0 OR {text} REGEXP {_CSV_SPECIAL}"
    if single:
        needs += f" OR HEX({text}) = '5C2E'"
    marked = f"CONCAT({_SQL_QUOTE_MARK}, {text}, {_SQL_QUOTE_MARK})"
    return f"IFNULL(IF({needs}, {marked}, {text}), '')"


def _mysql_quotes_in_place(lines: bytes, before: int, count: int) -> bytes:
    """The server's `count` lines, after `before` others, with their marked cells quoted.

    Marks come in pairs. An odd count means a text value held the mark's byte, which no
    valid UTF-8 does: the lines are refused rather than written with a cell's bounds lost."""
    marks = lines.count(_QUOTE_MARK)
    if not marks:
        return lines
    if marks % 2:
        raise SourceError(
            f"A text value in rows {before + 1:,} to {before + count:,} is not valid in its "
            "character set, so its CSV cell cannot be bounded: correct the value, or "
            "export the column as binary (CAST(... AS BINARY))."
        )
    return lines.replace(b'"', b'""').replace(_QUOTE_MARK, b'"')


# --- opening ----------------------------------------------------------------------------


@contextlib.contextmanager
def open_readonly(
    engine: Engine,
    backend: str,
    timeout_s: int,
    cancelled: Callable[[], bool] | None = None,
    zone: ZoneInfo | None = None,
    at: datetime | None = None,
) -> Iterator[ReadOnlySession]:
    """A read-only session on `engine`, rolled back (nothing to keep) when done.

    The session runs in `zone` (default UTC), so the database reads and writes times there;
    `at` is the run's moment, whose UTC offset stands in for `zone` on a MySQL server that
    does not know zone names."""
    zone = zone or ZoneInfo("UTC")
    if backend == "sqlite":
        with _sqlite_readonly(engine, timeout_s, cancelled, zone) as s:
            yield s
        return
    conn = engine.connect()
    broken = False
    try:
        wall_zone: tzinfo = zone
        if backend == "postgresql":
            # The first statements of a fresh transaction: nothing may run before them. One
            # round trip for the fixed settings (a pre-check opens such a session for every
            # submitted query), one for the zone, which is a bound value.
            settings = (
                f"statement_timeout = {int(timeout_s) * 1000}",
                "DateStyle = 'ISO, YMD'",
                "IntervalStyle = 'postgres'",
                "extra_float_digits = 1",
                "bytea_output = 'hex'",
            )
            conn.exec_driver_sql(
                "; ".join(["SET TRANSACTION READ ONLY", *(f"SET LOCAL {s}" for s in settings)])
            )
            conn.exec_driver_sql("SELECT set_config('TimeZone', %s, true)", (zone.key,))
        elif backend == "mysql":
            conn.exec_driver_sql("ROLLBACK")  # end whatever the pool's ping began
            if getattr(conn.dialect, "is_mariadb", False):
                conn.exec_driver_sql(f"SET SESSION max_statement_time = {int(timeout_s)}")
            else:
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout_s) * 1000}")
            wall_zone = _mysql_time_zone(conn, zone, at or datetime.now(UTC))
            conn.exec_driver_sql("START TRANSACTION READ ONLY")
        session = ReadOnlySession(conn, backend, timeout_s, zone, wall_zone)
        with StatementWatchdog(session, engine, cancelled):
            yield session
    except BaseException:
        broken = True
        raise
    finally:
        release(conn, backend, broken)


_MYSQL_UNKNOWN_TIME_ZONE = 1298


def _mysql_time_zone(conn: Connection, zone: ZoneInfo, at: datetime) -> tzinfo:
    """Set the session's time_zone to `zone`; returns the zone its wall times are in.

    Zone names need the server's time zone tables (mysql_tzinfo_to_sql), often not loaded:
    then the offset `zone` has at `at` is the session's zone, exact for every time on the
    same side of a DST change as the run."""
    import pymysql

    if zone.key != "UTC":
        try:
            conn.exec_driver_sql("SET SESSION time_zone = %s", (zone.key,))
            return zone
        except sa.exc.DBAPIError as exc:
            orig = exc.orig
            if not (
                isinstance(orig, pymysql.err.MySQLError)
                and orig.args
                and orig.args[0] == _MYSQL_UNKNOWN_TIME_ZONE
            ):
                raise
    offset = zone.utcoffset(at.astimezone(zone).replace(tzinfo=None)) or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
    conn.exec_driver_sql(f"SET SESSION time_zone = '{sign}{minutes // 60:02d}:{minutes % 60:02d}'")
    return timezone(timedelta(minutes=minutes if sign == "+" else -minutes))


def release(conn: Connection, backend: str, broken: bool) -> None:
    """End a session: roll back what is left, reset what the session set, return the
    connection to its pool (or drop it when it cannot be trusted any more)."""
    if broken and backend == "mysql":
        # An SSCursor left mid-result would be drained row by row on reuse: drop it.
        with contextlib.suppress(Exception):
            conn.invalidate()
    try:
        conn.rollback()
        # Session locks outlive the transaction and would stay with the pooled connection.
        if backend == "postgresql" and not conn.invalidated:
            conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
            conn.commit()
        if backend == "mysql" and not conn.invalidated:
            conn.exec_driver_sql("SELECT RELEASE_ALL_LOCKS()")
            for var in ("max_statement_time", "max_execution_time"):
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql(f"SET SESSION {var} = DEFAULT")
            conn.exec_driver_sql("SET SESSION time_zone = DEFAULT")
            conn.commit()
    except Exception:
        with contextlib.suppress(Exception):
            conn.invalidate()
    finally:
        with contextlib.suppress(Exception):
            conn.close()


class Interruptible(Protocol):
    """A connection whose running statement can be stopped: `raw` is the driver's own."""

    backend: str
    raw: Any


class StatementWatchdog:
    """Stops the running statement when the export (or a write) is canceled.

    From a connection of its own, on the server: `pg_cancel_backend` / `KILL QUERY` on the
    connection's id. Repeated each second until the run lets go, so a statement that starts
    after the first interrupt (the run was between two) is stopped too."""

    def __init__(
        self, session: Interruptible, engine: Engine, cancelled: Callable[[], bool] | None
    ) -> None:
        self.session = session
        self.engine = engine
        self.cancelled = cancelled
        self.fired = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StatementWatchdog:
        if self.cancelled is not None:
            self._thread = threading.Thread(target=self._run, name="export-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self.cancelled is not None
        interval = 0.25
        while not self._stop.wait(interval):
            try:
                if not self.cancelled():
                    continue
            except Exception:
                log.exception("cancellation check failed")
                continue
            self.fired = True
            self._interrupt()
            interval = 1.0

    def _interrupt(self) -> None:
        s = self.session
        try:
            if s.backend == "postgresql":
                pid = int(s.raw.info.backend_pid)
                with self.engine.connect() as other:
                    if not self._stop.is_set():
                        other.exec_driver_sql("SELECT pg_cancel_backend(%s)", (pid,))
            elif s.backend == "mysql":
                thread_id = int(s.raw.thread_id())
                with self.engine.connect() as other:
                    if not self._stop.is_set():
                        other.exec_driver_sql(f"KILL QUERY {thread_id}")
        except Exception as exc:  # the export stops at its next batch anyway
            log.warning("could not interrupt the running statement: %s", type(exc).__name__)


@contextlib.contextmanager
def _sqlite_readonly(
    engine: Engine, timeout_s: int, cancelled: Callable[[], bool] | None, zone: ZoneInfo
) -> Iterator[ReadOnlySession]:
    import time

    path = engine.url.database or ""
    in_memory = path in ("", ":memory:") or "mode=memory" in path
    if in_memory:
        ro_engine = engine  # nothing to reopen; query_only is the wall
    else:
        from pathlib import Path

        uri = Path(path).resolve().as_uri() + "?mode=ro"
        ro_engine = sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            poolclass=NullPool,
        )
    conn = ro_engine.connect()
    raw = conn.connection.driver_connection
    deadline = time.monotonic() + timeout_s
    state = {"why": ""}

    def interrupt() -> int:
        # SQLite has no statement timeout: the progress handler is the wall.
        if time.monotonic() > deadline:
            state["why"] = "timeout"
            return 1
        if cancelled is not None and cancelled():
            state["why"] = "cancel"
            return 1
        return 0

    assert raw is not None  # a live SQLite connection has its driver connection
    try:
        conn.exec_driver_sql("PRAGMA query_only = ON")
        # ATTACH would create a database file wherever it names, read-only or not.
        raw.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        raw.set_progress_handler(interrupt, 20_000)
        try:
            yield ReadOnlySession(conn, "sqlite", timeout_s, zone)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc) and state["why"] == "timeout":
                raise Timeout() from None
            if "interrupted" in str(exc) and state["why"] == "cancel":
                raise Canceled() from None
            raise
    finally:
        with contextlib.suppress(Exception):
            raw.set_progress_handler(None, 0)
            conn.rollback()
            if in_memory:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
        conn.close()
        if ro_engine is not engine:
            ro_engine.dispose()
