"""Names as the server reads them: PostgreSQL's own parser (pglast) against sqlglot on the
hostile spellings, and the rules that judge what the catalog says about a called name."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from service.domain.functions import (
    CatalogFunction,
    FunctionName,
    judge_mysql_functions,
    judge_pg_functions,
    judge_pg_operators,
    mysql_calls,
    read_pg_statement,
)
from service.domain.precheck import check_sql, normalize_name

# spelling -> the function PostgreSQL calls
SPELLINGS = [
    ('SELECT U&"\\0064blink_exec"(1)', FunctionName(None, "dblink_exec")),
    ('SELECT U&"pg\\005fterminate\\005fbackend"(1)', FunctionName(None, "pg_terminate_backend")),
    ("SELECT U&\"d!0062link\" UESCAPE '!' (1)", FunctionName(None, "dblink")),
    ('SELECT U&"pg\\+00005fsleep"(1)', FunctionName(None, "pg_sleep")),
    ('SELECT U&"pg\\005fcatalog".U&"lo\\005fexport"(1)', FunctionName("pg_catalog", "lo_export")),
    ('SELECT "PG_SLEEP"(1)', FunctionName(None, "PG_SLEEP")),  # quoted: kept, so unknown
    ("SELECT PG_CATALOG.PG_SLEEP(1)", FunctionName("pg_catalog", "pg_sleep")),
    ('SELECT "Public"."Fn"(1)', FunctionName("Public", "Fn")),
]


@pytest.mark.parametrize(("sql", "called"), SPELLINGS)
def test_postgres_parser_decodes_names_as_the_server(sql: str, called: FunctionName) -> None:
    assert read_pg_statement(sql).functions == (called,)


def _sqlglot_names(sql: str) -> set[str]:
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return {"<parse error>"}
    return {normalize_name(f.name) for f in tree.find_all(exp.Anonymous)}


@pytest.mark.parametrize(("sql", "called"), SPELLINGS[:5])
def test_sqlglot_does_not_read_escaped_names_as_the_server(sql: str, called: FunctionName) -> None:
    """The evidence for PostgreSQL's own parser: sqlglot reads U&"…" as a column `U` and a
    function named by the undecoded text, or cannot parse UESCAPE at all."""
    assert called.name not in _sqlglot_names(sql)


def test_escaped_dangerous_names_are_refused_by_the_rules_alone() -> None:
    for sql, _ in SPELLINGS[:5]:
        problems = check_sql(sql, "postgres")
        assert problems and "calls" in problems[0], (sql, problems)


def test_postgres_syntax_error_says_line_and_column_in_words() -> None:
    (problem,) = check_sql("SELECT id,\n  amount *\nFROM orders", "postgres")
    assert problem.startswith("the statement is not valid PostgreSQL SQL: syntax error")
    assert "line 3, column 1" in problem and "<class" not in problem


def test_mysql_syntax_error_names_the_operator_not_a_class() -> None:
    (problem,) = check_sql("SELECT a * FROM t", "mysql")
    assert "the operator *" in problem and "<class" not in problem and "line 1" in problem


def _fn(name: str, *, builtin: bool = True, volatility: str = "i") -> CatalogFunction:
    return CatalogFunction("pg_catalog" if builtin else "public", name, builtin, volatility, "c")


def test_catalog_verdicts() -> None:
    calls = [FunctionName(None, n) for n in ("lower", "random", "setseed", "evil", "gone")]
    found = {
        calls[0]: [_fn("lower")],
        calls[1]: [_fn("random", volatility="v")],
        calls[2]: [_fn("setseed", volatility="v")],
        calls[3]: [_fn("evil", builtin=False, volatility="i")],
    }
    problems = judge_pg_functions(calls, found, allowed_functions=())
    assert len(problems) == 3
    assert "setseed()" in problems[0] and "VOLATILE" in problems[0]
    assert "public.evil()" in problems[1] and "allowed_functions" in problems[1]
    assert "gone()" in problems[2] and "does not know" in problems[2]
    assert len(judge_pg_functions(calls, found, allowed_functions=("public.evil",))) == 2


def test_one_created_overload_refuses_the_name() -> None:
    call = FunctionName(None, "initcap")
    found = {call: [_fn("initcap"), _fn("initcap", builtin=False)]}
    assert judge_pg_functions([call], found, ())


def test_operator_running_a_volatile_function_is_refused() -> None:
    op = FunctionName(None, "###")
    assert judge_pg_operators([op], {op: [_fn("bump", builtin=False, volatility="v")]})
    assert not judge_pg_operators([op], {op: [_fn("textcat", builtin=False)]})


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT CONCAT(a, 'x'), DATE_FORMAT(NOW(), '%Y') FROM t", []),
        ("SELECT `concat`(a) FROM t", ["concat"]),
        ("SELECT shop.total(a) FROM t", ["shop.total"]),
        ("SELECT * FROM (SELECT 1) AS q (a) JOIN t USING (a)", []),
        ("WITH RECURSIVE n (i) AS (SELECT 1) SELECT i FROM n", []),
        ("SELECT CAST(a AS DECIMAL(10, 2)), CAST(a AS CHAR(3)) FROM t", []),
        ("SELECT a FROM t USE INDEX (ix) WHERE a IN (1, 2)", []),
        ("SELECT MATCH (a) AGAINST ('x') FROM t", []),
        ("SELECT my_total(a) FROM t", ["my_total"]),
        ("SELECT $total(a), 9total(a), a$b(1) FROM t", ["$total", "9total", "a$b"]),
        ("SELECT a = (1), 1 + (2), ((3)) FROM t", []),
    ],
)
def test_mysql_functions_come_from_the_built_ins(sql: str, refused: list[str]) -> None:
    d = sqlglot.Dialect.get_or_raise("mysql")
    tokens = d.tokenize(sql)
    calls = mysql_calls(tokens, d.parser().parse(tokens, sql)[0])
    problems = judge_mysql_functions(calls, (), normalize_name)
    assert [p.split("calls ", 1)[1].split("()", 1)[0] for p in problems] == refused
    assert not judge_mysql_functions(calls, refused, normalize_name)
