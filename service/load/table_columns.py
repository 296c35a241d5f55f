"""A table's live columns, read with SQLAlchemy's inspector the same way on every dialect:
as an import's conversion sees them (`target_column`), as the generators' domain describes
them (`table_columns`), and the values a `ref` column may pick from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from service.datasources import describe_db_error
from service.domain.errors import NotFound, Unavailable
from service.domain.generators import ColumnInfo, ColumnType
from service.domain.imports import TargetColumn, ValueKind

# The most values a `ref` column picks from: the referenced column's smallest ones, so the
# same rows come out for the same seed as long as that table does not change.
MAX_REF_VALUES = 200_000

_INT_RANGES = {
    "SMALLINT": 16,
    "TINYINT": 8,
    "MEDIUMINT": 24,
    "INTEGER": 32,
    "INT": 32,
    "BIGINT": 64,
}


def target_column(col: Any) -> TargetColumn:
    """A reflected column (SQLAlchemy inspector dict) as the conversion sees it."""
    t = col["type"]
    name = type(t).__name__.upper()
    has_default = bool(
        col.get("default") is not None
        or col.get("autoincrement") is True
        or col.get("identity")
        or col.get("computed")
    )
    base: dict[str, Any] = {
        "name": col["name"],
        "nullable": bool(col.get("nullable", True)),
        "has_default": has_default,
    }
    if isinstance(t, sa.Boolean):
        return TargetColumn(kind=ValueKind.BOOLEAN, **base)
    if isinstance(t, sa.Integer):
        bits = _INT_RANGES.get(name, 64)
        if getattr(t, "unsigned", False):
            return TargetColumn(kind=ValueKind.INTEGER, min_int=0, max_int=2**bits - 1, **base)
        return TargetColumn(
            kind=ValueKind.INTEGER, min_int=-(2 ** (bits - 1)), max_int=2 ** (bits - 1) - 1, **base
        )
    if isinstance(t, sa.Float):
        return TargetColumn(kind=ValueKind.FLOAT, **base)
    if isinstance(t, sa.Numeric):
        return TargetColumn(kind=ValueKind.DECIMAL, precision=t.precision, scale=t.scale, **base)
    if isinstance(t, sa.Enum):
        return TargetColumn(kind=ValueKind.TEXT, choices=tuple(t.enums), **base)
    if isinstance(t, sa.String):
        return TargetColumn(kind=ValueKind.TEXT, length=t.length, **base)
    if isinstance(t, sa.DateTime):
        return TargetColumn(kind=ValueKind.DATETIME, with_timezone=bool(t.timezone), **base)
    if isinstance(t, sa.Date):
        return TargetColumn(kind=ValueKind.DATE, **base)
    if isinstance(t, sa.Time):
        return TargetColumn(kind=ValueKind.TIME, **base)
    if isinstance(t, sa.Uuid):
        return TargetColumn(kind=ValueKind.UUID, **base)
    if isinstance(t, sa.JSON):
        return TargetColumn(kind=ValueKind.JSON, **base)
    return TargetColumn(kind=ValueKind.OTHER, **base)


def table_columns(engine: Engine, schema: str, table: str) -> list[ColumnInfo]:
    """The columns of `schema.table` in table order; NotFound names what is missing."""
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(table, schema=schema or None):
            raise NotFound(
                f"table {table!r} does not exist in {schema or 'the default database'}: "
                "check its name (and the database)"
            )
        where = schema or None
        raw = inspector.get_columns(table, schema=where)
        unique = _unique_columns(inspector, table, where)
        refs = _single_column_refs(inspector, table, where)
        columns = [
            _describe(c, c["name"] in unique, refs.get(c["name"]), engine.dialect) for c in raw
        ]
        return [_with_max(engine, schema, table, c) for c in columns]
    except sa.exc.SQLAlchemyError as exc:
        raise Unavailable(f"table {table!r} could not be read: {describe_db_error(exc)}") from None


def ref_values(
    engine: Engine, schema: str, targets: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Any]]:
    """For each (table, column) — the table may be `schema.table` — its distinct non-NULL
    values, smallest first, at most MAX_REF_VALUES. A missing table or column is left out."""
    out: dict[tuple[str, str], list[Any]] = {}
    for target in sorted(targets):
        ref_schema, _, ref_table = target[0].rpartition(".")
        ref_schema = ref_schema or schema
        try:
            names = {c.name for c in table_columns(engine, ref_schema, ref_table)}
        except NotFound:
            continue
        if target[1] not in names:
            continue
        column: sa.ColumnClause[Any] = sa.column(target[1])
        query = (
            sa.select(column)
            .select_from(sa.table(ref_table, schema=ref_schema or None))
            .where(column.is_not(None))
            .distinct()
            .order_by(column)
            .limit(MAX_REF_VALUES)
        )
        try:
            with engine.connect() as conn:
                out[target] = list(conn.execute(query).scalars())
        except sa.exc.SQLAlchemyError as exc:
            raise Unavailable(
                f"{target[0]}.{target[1]} could not be read: {describe_db_error(exc)}"
            ) from None
    return out


def _unique_columns(inspector: Any, table: str, schema: str | None) -> set[str]:
    keys = [inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or []]
    keys += [u["column_names"] for u in inspector.get_unique_constraints(table, schema=schema)]
    keys += [
        i["column_names"]
        for i in inspector.get_indexes(table, schema=schema)
        if i.get("unique") and not i.get("expressions")
    ]
    return {k[0] for k in keys if len(k) == 1 and k[0] is not None}


def _single_column_refs(
    inspector: Any, table: str, schema: str | None
) -> dict[str, tuple[str, str]]:
    refs = {}
    for fk in inspector.get_foreign_keys(table, schema=schema):
        if len(fk["constrained_columns"]) == 1 and len(fk["referred_columns"]) == 1:
            target = fk["referred_table"]
            if fk.get("referred_schema") and fk["referred_schema"] != schema:
                target = f"{fk['referred_schema']}.{target}"
            refs[fk["constrained_columns"][0]] = (target, fk["referred_columns"][0])
    return refs


# The generators' words for the import conversion's kinds of column.
_COLUMN_TYPES = {
    ValueKind.INTEGER: ColumnType.INTEGER,
    ValueKind.DECIMAL: ColumnType.DECIMAL,
    ValueKind.FLOAT: ColumnType.FLOAT,
    ValueKind.TEXT: ColumnType.TEXT,
    ValueKind.DATE: ColumnType.DATE,
    ValueKind.DATETIME: ColumnType.TIMESTAMP,
    ValueKind.BOOLEAN: ColumnType.BOOLEAN,
    ValueKind.UUID: ColumnType.UUID,
}


def _describe(c: Any, unique: bool, ref: tuple[str, str] | None, dialect: sa.Dialect) -> ColumnInfo:
    target = target_column(c)
    column_type = _COLUMN_TYPES.get(target.kind, ColumnType.OTHER)
    t = c["type"]
    if isinstance(t, mysql.TINYINT) and t.display_width == 1:  # MySQL's BOOLEAN
        column_type = ColumnType.BOOLEAN
    return ColumnInfo(
        name=target.name,
        type=column_type,
        type_name=_type_name(t, dialect),
        nullable=target.nullable,
        unique=unique,
        has_default=target.has_default,
        autoincrement=c.get("autoincrement") is True or bool(c.get("identity")),
        # GENERATED ALWAYS AS IDENTITY refuses written values as a computed column does.
        computed=bool(c.get("computed") or (c.get("identity") or {}).get("always")),
        length=target.length,
        precision=target.precision,
        scale=target.scale,
        int_min=target.min_int,
        int_max=target.max_int,
        timezone=target.with_timezone,
        enum_values=target.choices,
        ref=ref,
    )


def _type_name(t: Any, dialect: sa.Dialect) -> str:
    try:
        return str(t.compile(dialect=dialect)).lower()
    except Exception:  # a dialect type the generic compiler cannot spell
        return type(t).__name__.lower()


def _with_max(engine: Engine, schema: str, table: str, col: ColumnInfo) -> ColumnInfo:
    """A unique integer column the rows fill: its largest value, so a sequence can start
    past the rows already there."""
    if not (col.unique and col.type is ColumnType.INTEGER and not col.has_default):
        return col
    column: sa.ColumnClause[Any] = sa.column(col.name)
    query = sa.select(sa.func.max(column)).select_from(sa.table(table, schema=schema or None))
    with engine.connect() as conn:
        largest = conn.execute(query).scalar()
    return replace(col, max_existing=largest)
