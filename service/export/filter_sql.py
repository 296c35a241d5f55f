"""A checked table filter (sqlglot tree) as a SQLAlchemy condition.

Every column becomes the table's own Column object and every literal a bound parameter, so
nothing of the filter's text reaches the SQL string. The compiler accepts only the node
types that `service.domain.filters` allows and raises InvalidFilter on anything else, so
an unchecked tree fails here rather than running.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlglot import exp

from service.domain.filters import MAX_FILTER_DEPTH, InvalidFilter

_T = exp.DType


class _Verbatim(sa.types.TypeDecorator[Any]):
    """A parameter type with no conversion and no rendered cast.

    The value reaches the driver as written, and the database coerces it against the
    column as it would a literal (`created_at > '2024-01-01'`), instead of SQLAlchemy
    taking on the column's type and rejecting a string for a DateTime column.
    """

    impl = sa.types.NullType
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        # The sqlite3 driver binds neither Decimal nor integers beyond 64 bits.
        unbindable = isinstance(value, Decimal) or (isinstance(value, int) and abs(value) >= 2**63)
        if dialect.name == "sqlite" and unbindable:
            return float(value)
        return value


class _TemporalCast(FunctionElement[Any]):
    """CAST to a date/time type. SQLite has no such types (its CAST would yield a number), so
    there it is SQLite's date()/time()/datetime(), which give the text such columns hold."""

    inherit_cache = True
    sqlite_function = "datetime"


class _CastDate(_TemporalCast):
    inherit_cache = True
    type = sa.Date()
    sqlite_function = "date"


class _CastTime(_TemporalCast):
    inherit_cache = True
    type = sa.Time()
    sqlite_function = "time"


class _CastDateTime(_TemporalCast):
    inherit_cache = True
    type = sa.DateTime()


class _CastDateTimeTz(_TemporalCast):
    inherit_cache = True
    type = sa.DateTime(timezone=True)


@compiles(_TemporalCast)
def _compile_temporal_cast(element: _TemporalCast, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    return compiler.process(sa.cast(value, element.type), **kw)


@compiles(_TemporalCast, "sqlite")
def _compile_temporal_cast_sqlite(element: _TemporalCast, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    return f"{element.sqlite_function}({compiler.process(value, **kw)})"


_TEMPORAL_CASTS: dict[exp.DType, type[_TemporalCast]] = {
    _T.DATE: _CastDate,
    _T.TIME: _CastTime,
    _T.DATETIME: _CastDateTime,
    _T.TIMESTAMP: _CastDateTime,
    _T.TIMESTAMPTZ: _CastDateTimeTz,
}

_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}

# Plain SQL operators: SQLAlchemy's Python operators would turn + on a text column into
# concatenation and / on integers into true division; the user wrote SQL, so SQL it stays.
_ARITHMETIC: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}


def _param(params: list[int], index: int) -> int | None:
    return params[index] if index < len(params) else None


_CAST: dict[exp.DType, Callable[[list[int]], sa.types.TypeEngine[Any]]] = {
    _T.TEXT: lambda p: sa.Text(),
    _T.VARCHAR: lambda p: sa.String(_param(p, 0)),
    _T.NVARCHAR: lambda p: sa.String(_param(p, 0)),
    _T.CHAR: lambda p: sa.CHAR(_param(p, 0)),
    _T.NCHAR: lambda p: sa.CHAR(_param(p, 0)),
    _T.INT: lambda p: sa.Integer(),
    _T.BIGINT: lambda p: sa.BigInteger(),
    _T.SMALLINT: lambda p: sa.SmallInteger(),
    _T.TINYINT: lambda p: sa.SmallInteger(),
    _T.DECIMAL: lambda p: sa.Numeric(_param(p, 0), _param(p, 1)),
    _T.DOUBLE: lambda p: sa.Double(),
    _T.FLOAT: lambda p: sa.Float(),
    _T.BOOLEAN: lambda p: sa.Boolean(),
}


def compile_filter(expr: exp.Expression, table: sa.Table) -> sa.ColumnElement[bool]:
    """The WHERE condition for `expr`, a tree from `service.domain.filters.parse_filter`."""
    return _Compiler(table).condition(expr, 0)


def _bind(value: object) -> sa.BindParameter[Any]:
    return sa.bindparam(None, value, type_=_Verbatim(), unique=True)


class _Compiler:
    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def condition(self, node: exp.Expr, depth: int) -> sa.ColumnElement[bool]:
        return self.value(node, depth)

    def value(self, node: exp.Expr, depth: int) -> sa.ColumnElement[Any]:
        if depth > MAX_FILTER_DEPTH * 2:
            raise InvalidFilter(f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep")
        d = depth + 1
        kind = type(node)
        if kind is exp.Paren:
            return self.value(node.this, depth)
        if isinstance(node, exp.Column):
            return self.column(node)
        if isinstance(node, exp.Literal):
            return _bind(node.this if node.is_string else _number(node))
        if kind is exp.Boolean:
            return sa.true() if node.this else sa.false()
        if kind is exp.Null:
            return sa.null()
        if kind in (exp.And, exp.Or):
            # Flatten the chain iteratively: a long AND list must not recurse once per term.
            terms = [self.condition(t, d) for t in _chain(node, kind)]
            return sa.and_(*terms) if kind is exp.And else sa.or_(*terms)
        if kind is exp.Not:
            return sa.not_(self.condition(node.this, d))
        if kind in _COMPARISONS:
            left, right = self.value(node.this, d), self.value(node.expression, d)
            return left.op(_COMPARISONS[kind], is_comparison=True)(right)
        if kind is exp.Is:
            if not isinstance(node.expression, exp.Null):
                raise InvalidFilter("IS may only be followed by NULL or NOT NULL")
            left = self.value(node.this, d)
            return left.is_not(None) if node.args.get("negate") else left.is_(None)
        if kind is exp.In:
            values = [self.value(v, d) for v in node.expressions]
            if not values or node.args.get("query") or node.args.get("unnest"):
                raise InvalidFilter("IN needs a list of values")
            return self.value(node.this, d).in_(values)
        if kind is exp.Between:
            low, high = self.value(node.args["low"], d), self.value(node.args["high"], d)
            return self.value(node.this, d).between(low, high)
        if kind in (exp.Like, exp.ILike):
            left, pattern = self.value(node.this, d), self.value(node.expression, d)
            like = left.like(pattern) if kind is exp.Like else left.ilike(pattern)
            return sa.not_(like) if node.args.get("negate") else like
        if kind in _ARITHMETIC:
            left, right = self.value(node.this, d), self.value(node.expression, d)
            return left.op(_ARITHMETIC[kind])(right)
        if kind is exp.Neg:
            if isinstance(node.this, exp.Literal) and not node.this.is_string:
                return _bind(-_number(node.this))  # one parameter, not -(param)
            return -self.value(node.this, d)
        return self.function(node, d)

    def function(self, node: exp.Expr, d: int) -> sa.ColumnElement[Any]:
        kind = type(node)
        arg = node.args.get
        if kind is exp.Lower:
            return sa.func.lower(self.value(node.this, d))
        if kind is exp.Upper:
            return sa.func.upper(self.value(node.this, d))
        if kind is exp.Length:
            # MySQL's LENGTH counts bytes and sqlglot keeps that apart as `binary`.
            fn = sa.func.length if arg("binary") else sa.func.char_length
            return fn(self.value(node.this, d))
        if kind is exp.Trim and not (arg("expression") or arg("position")):
            return sa.func.trim(self.value(node.this, d))
        if kind is exp.Coalesce:
            args = [node.this, *node.expressions]
            return sa.func.coalesce(*(self.value(a, d) for a in args))
        if kind is exp.Abs:
            return sa.func.abs(self.value(node.this, d))
        if kind is exp.Round and not arg("truncate"):
            args = [node.this] + ([arg("decimals")] if arg("decimals") else [])
            return sa.func.round(*(self.value(a, d) for a in args))
        if kind in (exp.Date, exp.TsOrDsToDate) and not (arg("zone") or arg("format")):
            return sa.func.date(self.value(node.this, d))
        if kind is exp.Substring:
            args = [node.this] + [arg(k) for k in ("start", "length") if arg(k)]
            return sa.func.substr(*(self.value(a, d) for a in args))
        if kind is exp.Cast:
            to = node.args["to"]
            temporal = _TEMPORAL_CASTS.get(to.this) if isinstance(to, exp.DataType) else None
            if temporal is not None:
                return temporal(self.value(node.this, d))
            return sa.cast(self.value(node.this, d), _cast_type(to))
        raise InvalidFilter(f"the filter contains {kind.key.upper()}, which cannot be compiled")

    def column(self, node: exp.Column) -> sa.ColumnElement[Any]:
        if node.args.get("table") is not None or node.args.get("db") is not None:
            raise InvalidFilter("a filter column must not be qualified; check it with parse_filter")
        name = node.name
        if name not in self.table.c:
            columns = ", ".join(c.name for c in self.table.c)
            raise InvalidFilter(
                f"table {self.table.name!r} has no column {name!r}; its columns are: {columns}"
            )
        return self.table.c[name]


def _chain(node: exp.Expr, kind: type[exp.Expr]) -> list[exp.Expr]:
    """The operands of a chain of the same connector, left to right, without recursion."""
    terms: list[exp.Expr] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            stack.append(current.expression)
            stack.append(current.this)
        else:
            terms.append(current)
    return terms


def _number(node: exp.Literal) -> int | Decimal:
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
    if not number.is_finite():
        raise InvalidFilter(f"the filter has a number that cannot be read: {text[:40]!r}")
    return number


def _cast_type(to: exp.Expr) -> sa.types.TypeEngine[Any]:
    if not isinstance(to, exp.DataType) or to.this not in _CAST:
        raise InvalidFilter("the filter casts to a type that is not allowed")
    params = []
    for param in to.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise InvalidFilter("a type parameter of a CAST must be a whole number")
        params.append(int(value.this))
    return _CAST[to.this](params)
