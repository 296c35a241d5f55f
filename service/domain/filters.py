"""The table-mode `filter`: one boolean condition over the table's own columns.

The text is parsed with sqlglot and checked against an allow-list of node types; only the
resulting tree travels on, and the exporter turns it into bound parameters and column
objects. The text itself is never pasted into SQL, so anything the allow-list does not
name (subqueries, other functions, comments, variables) is refused rather than escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import TokenType

from service.domain.errors import InvalidRequest

MAX_FILTER_CHARS = 4000
# Levels of the tree; a chain of ANDs or ORs counts once, so long lists of terms are fine.
MAX_FILTER_DEPTH = 50

ALLOWED_FUNCTIONS = (
    "lower, upper, length, char_length, trim, coalesce, abs, round, date, substr, substring, cast"
)
ALLOWED_SYNTAX = (
    "comparisons (= <> < <= > >=), AND, OR, NOT, IS [NOT] NULL, [NOT] IN (values), "
    "BETWEEN, [NOT] LIKE / ILIKE, + - * / % and the functions " + ALLOWED_FUNCTIONS
)

# Node type -> the args it may carry (anything else set on it is refused, so a flag that
# changes meaning, like ROUND's `truncate`, cannot slip through unnoticed).
_ALLOWED: dict[type[exp.Expression], frozenset[str]] = {
    exp.Column: frozenset({"this", "table"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Paren: frozenset({"this"}),
    exp.And: frozenset({"this", "expression"}),
    exp.Or: frozenset({"this", "expression"}),
    exp.Not: frozenset({"this"}),
    exp.EQ: frozenset({"this", "expression"}),
    exp.NEQ: frozenset({"this", "expression"}),
    exp.LT: frozenset({"this", "expression"}),
    exp.LTE: frozenset({"this", "expression"}),
    exp.GT: frozenset({"this", "expression"}),
    exp.GTE: frozenset({"this", "expression"}),
    exp.Is: frozenset({"this", "expression", "negate"}),
    exp.In: frozenset({"this", "expressions"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.ILike: frozenset({"this", "expression", "negate"}),
    exp.Add: frozenset({"this", "expression"}),
    exp.Sub: frozenset({"this", "expression"}),
    exp.Mul: frozenset({"this", "expression"}),
    # typed/safe record the dialect's division semantics; the database applies its own.
    exp.Div: frozenset({"this", "expression", "typed", "safe"}),
    exp.Mod: frozenset({"this", "expression"}),
    exp.Neg: frozenset({"this"}),
    exp.Lower: frozenset({"this"}),
    exp.Upper: frozenset({"this"}),
    exp.Length: frozenset({"this", "binary"}),
    exp.Trim: frozenset({"this"}),
    exp.Coalesce: frozenset({"this", "expressions", "is_nvl", "is_null"}),
    exp.Abs: frozenset({"this"}),
    exp.Round: frozenset({"this", "decimals"}),
    exp.Date: frozenset({"this"}),
    exp.TsOrDsToDate: frozenset({"this"}),
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.DataType: frozenset({"this", "expressions", "nested"}),
    exp.DataTypeParam: frozenset({"this"}),
}

# Types a filter may CAST to; the exporter maps each to a SQLAlchemy type.
CAST_TYPES = frozenset(
    {
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.NVARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.NCHAR,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.DATETIME,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPTZ,
        exp.DataType.Type.TIME,
        exp.DataType.Type.BOOLEAN,
    }
)

# Nodes whose value is true or false: what a filter must be, and what AND/OR/NOT combine.
_CONDITIONS = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.LT,
    exp.LTE,
    exp.GT,
    exp.GTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Boolean,
)

_FUNCTIONS = (
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Trim,
    exp.Coalesce,
    exp.Abs,
    exp.Round,
    exp.Date,
    exp.TsOrDsToDate,
    exp.Substring,
    exp.Cast,
)


class InvalidFilter(InvalidRequest):
    """A table filter that is not a condition this service can run safely."""


def parse_filter(
    text: str, columns: Sequence[str], dialect: str, table: str = ""
) -> exp.Expression:
    """The checked condition of `text`, its column names rewritten to the table's own spelling.

    Raises InvalidFilter with every problem found.
    """
    tree, problems = _check(text, columns, dialect, table)
    if problems or tree is None:
        raise InvalidFilter("; ".join(problems) or f"{_label(table)} is not a condition")
    return tree


def filter_problems(text: str, columns: Sequence[str], dialect: str, table: str = "") -> list[str]:
    """What is wrong with `text` as a filter of `table`; an empty list means it is accepted."""
    return _check(text, columns, dialect, table)[1]


def _label(table: str) -> str:
    return f"the filter of table {table!r}" if table else "the filter"


def _check(
    text: str, columns: Sequence[str], dialect: str, table: str
) -> tuple[exp.Expression | None, list[str]]:
    label = _label(table)
    if not text.strip():
        return None, [f"{label} is empty: write a condition such as status = 'paid', or none"]
    if len(text) > MAX_FILTER_CHARS:
        return None, [
            f"{label} is {len(text):,} characters long, more than {MAX_FILTER_CHARS:,}: "
            "shorten it, or export with a SQL query instead"
        ]
    d = Dialect.get_or_raise(dialect)
    try:
        tokens = d.tokenize(text)
    except TokenError:
        return None, [f"{label} could not be read: check for an unclosed quote"]
    except (SqlglotError, RecursionError, ValueError):
        return None, [f"{label} could not be read: check its syntax"]

    depth = 0
    for token in tokens:
        if token.comments or token.token_type == TokenType.HINT:
            return None, [f"{label} contains a comment: remove it; a filter is one condition"]
        if token.token_type == TokenType.SEMICOLON:
            return None, [
                f"{label} contains a semicolon: a filter is one condition, "
                "not several statements; remove it"
            ]
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_FILTER_DEPTH:
                return None, [_too_deep(label)]
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    if not tokens:
        # Only comments: the tokenizer keeps no token to hang them on.
        return None, [f"{label} contains only a comment: write a condition"]

    try:
        parsed = d.parser().parse_into(exp.Condition, tokens, text)
    except RecursionError:
        return None, [_too_deep(label)]
    except ParseError as exc:
        return None, [_parse_problem(label, exc)]
    except (SqlglotError, ValueError, TypeError, KeyError, AttributeError):
        return None, [f"{label} could not be parsed: check its syntax"]
    tree = parsed[0] if parsed else None
    if not isinstance(tree, exp.Expression):
        return None, [f"{label} is empty: write a condition"]

    problems = _tree_problems(label, tree, columns, table)
    return (None if problems else tree), problems


def _too_deep(label: str) -> str:
    return f"{label} is nested more than {MAX_FILTER_DEPTH} levels deep: simplify it"


def _parse_problem(label: str, exc: ParseError) -> str:
    error = exc.errors[0] if exc.errors else {}
    near = str(error.get("highlight") or "")
    where = f" near {near[:40]!r}" if near else ""
    if error.get("col"):
        where += f" (column {error['col']})"
    return (
        f"{label} is not a single condition{where}: write one boolean expression "
        "such as status = 'paid' AND amount > 100"
    )


def _strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _tree_problems(
    label: str, tree: exp.Expression, columns: Sequence[str], table: str
) -> list[str]:
    problems: list[str] = []
    root = _strip_parens(tree)
    # A refused root gets its own message below; only an allowed one can fail to be boolean.
    if type(root) in _ALLOWED and not isinstance(root, _CONDITIONS):
        problems.append(
            f"{label} is not a condition: a bare column or value filters nothing; "
            "compare it, e.g. status = 'paid' or deleted_at IS NULL"
        )
    renames: list[tuple[exp.Column, str]] = []
    stack: list[tuple[exp.Expression, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            return [_too_deep(label)]
        problem = _node_problem(label, node)
        if problem is not None:
            problems.append(problem)
            continue  # what is below a refused node does not matter
        if isinstance(node, exp.Column):
            resolved = _resolve_column(label, node, columns, table)
            if isinstance(resolved, tuple):
                renames.append(resolved)
            else:
                problems.append(resolved)
            continue
        for child in node.iter_expressions():
            # A chain of the same AND or OR is one level, however long.
            same_chain = isinstance(node, (exp.And, exp.Or)) and type(child) is type(node)
            stack.append((child, depth if same_chain else depth + 1))
    if problems:
        return list(dict.fromkeys(problems))
    for column, name in renames:
        column.set("this", exp.to_identifier(name, quoted=True))
        column.set("table", None)
    return []


def _node_problem(label: str, node: exp.Expression) -> str | None:
    kind = type(node)
    allowed = _ALLOWED.get(kind)
    if allowed is None:
        return _refused(label, node)
    if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
        return _refused(label, exp.Subquery())
    if isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog")):
        dotted = ".".join(part.name for part in node.parts)
        return (
            f"{label} refers to {dotted}: a filter may only use its own table's columns, "
            "unqualified or as <table>.<column>"
        )
    if isinstance(node, exp.DataType) and node.this not in CAST_TYPES:
        return (
            f"{label} casts to {node.sql()[:40]}, which is not allowed: cast to a text, "
            "integer, decimal, float, date, time, timestamp or boolean type"
        )
    extra = [
        key
        for key, value in node.args.items()
        if not key.startswith("_") and key not in allowed and value not in (None, False, [])
    ]
    if extra:
        return (
            f"{label} uses {_describe(node)} with {', '.join(extra)}, which filters do not "
            "allow: write it in its simplest form"
        )
    if isinstance(node, (exp.And, exp.Or)):
        for operand in node.iter_expressions():
            if not isinstance(_strip_parens(operand), _CONDITIONS):
                word = kind.__name__.upper()
                return (
                    f"{label} applies {word} to something that is not a condition: "
                    f"{word} combines comparisons, e.g. a = 1 {word} b = 2"
                )
    if isinstance(node, exp.Not) and not isinstance(_strip_parens(node.this), _CONDITIONS):
        return (
            f"{label} applies NOT to something that is not a condition: "
            "NOT negates a comparison, e.g. NOT (status = 'paid')"
        )
    if isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null):
        return f"{label} uses IS with something other than NULL: write IS NULL or IS NOT NULL"
    if isinstance(node, exp.In):
        for value in node.expressions:
            if not _is_value(_strip_parens(value)):
                return (
                    f"{label} has an IN list with something other than values: "
                    "list literal values only, e.g. status IN ('paid', 'sent')"
                )
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            number = Decimal(node.this)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            return f"{label} has a number that cannot be read: {node.this[:40]!r}"
    if isinstance(node, exp.DataTypeParam) and not (
        isinstance(node.this, exp.Literal) and node.this.is_int
    ):
        return f"{label} has a type parameter that is not a whole number"
    if isinstance(node, exp.Identifier) and not isinstance(node.parent, exp.Column):
        return _refused(label, node)
    return None


def _is_value(node: exp.Expression) -> bool:
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    return isinstance(node, (exp.Literal, exp.Null, exp.Boolean))


def _refused(label: str, node: exp.Expression) -> str:
    if isinstance(node, (exp.Subquery, exp.Select, exp.Exists, exp.Query, exp.Any, exp.All)):
        return (
            f"{label} contains a subquery: a filter may only use the table's own columns "
            "and literal values"
        )
    if isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
        return (
            f"{label} uses a variable or placeholder: write the value itself, e.g. status = 'paid'"
        )
    if isinstance(node, exp.Star):
        return f"{label} contains *: a filter compares columns, name them"
    if isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
        name = node.name if isinstance(node, exp.Anonymous) else type(node).sql_names()[0]
        return (
            f"{label} calls {name.lower()[:60]}(), which is not allowed in a filter: "
            f"use only {ALLOWED_FUNCTIONS}"
        )
    if isinstance(node, (exp.HexString, exp.BitString, exp.ByteString, exp.RawString)):
        return f"{label} has a {_describe(node)} literal: write a plain 'quoted string' or number"
    return (
        f"{label} contains {_describe(node)}, which is not allowed in a filter: "
        f"use {ALLOWED_SYNTAX}"
    )


def _describe(node: exp.Expression) -> str:
    names = {
        exp.National: "N'…' string",
        exp.Concat: "string concatenation",
        exp.DPipe: "string concatenation (||)",
        exp.Interval: "an INTERVAL",
        exp.NullSafeEQ: "<=>",
        exp.Escape: "LIKE … ESCAPE",
        exp.Identifier: "a bare name",
    }
    return names.get(type(node), type(node).key.upper())


def _resolve_column(
    label: str, column: exp.Column, columns: Sequence[str], table: str
) -> tuple[exp.Column, str] | str:
    """(column, the table's spelling of its name), or a problem.

    Quoted names match exactly; unquoted ones also case-insensitively, as all three
    databases treat unquoted names.
    """
    ident = column.args.get("this")
    if not isinstance(ident, exp.Identifier):
        return _refused(label, ident if isinstance(ident, exp.Expression) else column)
    qualifier = column.args.get("table")
    if qualifier is not None and not (
        isinstance(qualifier, exp.Identifier) and table and _matches(qualifier, table)
    ):
        other = qualifier.name if isinstance(qualifier, exp.Expression) else qualifier
        own = f"unqualified or as {table}.<column>" if table else "unqualified"
        return (
            f"{label} refers to {other}.{ident.name}: a filter may only use its own "
            f"table's columns, {own}"
        )
    name = _match_name(ident, columns)
    if name is None:
        return (
            f"{label} uses column {ident.name!r}, which {_where(table)} does not have; "
            f"its columns are: {', '.join(columns) or '(none)'}"
        )
    return column, name


def _where(table: str) -> str:
    return f"table {table!r}" if table else "the table"


def _matches(ident: exp.Identifier, name: str) -> bool:
    return ident.name == name or (not ident.quoted and ident.name.casefold() == name.casefold())


def _match_name(ident: exp.Identifier, columns: Sequence[str]) -> str | None:
    if ident.name in columns:
        return ident.name
    if ident.quoted:
        return None
    folded = [c for c in columns if c.casefold() == ident.name.casefold()]
    return folded[0] if len(folded) == 1 else None
