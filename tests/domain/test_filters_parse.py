"""Table filters: one condition over the table's own columns, or a message saying why not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from service.domain.errors import InvalidRequest
from service.domain.filters import (
    MAX_FILTER_CHARS,
    InvalidFilter,
    filter_problems,
    parse_filter,
)

COLUMNS = ["id", "name", "Amount", "created_at", "status", "date"]
DIALECTS = ["postgres", "mysql", "sqlite"]

ACCEPTED = [
    "id = 1",
    "name = 'x'' OR 1=1 --'",
    "status IN ('paid', 'sent') AND amount > 10",
    "status NOT IN ('void')",
    "id BETWEEN 1 AND 10",
    "id NOT BETWEEN 1 AND 10",
    "name IS NULL OR name IS NOT NULL",
    "name LIKE 'a%' AND name NOT LIKE '%z'",
    "name ILIKE 'A%'",
    "NOT (status = 'void')",
    "(id > 1 AND id < 5) OR (id >= 10 AND id <= 20) OR id <> 7 OR id != 8",
    "id % 2 = 0 AND id * 3 + 1 - 2 / 1 > -5",
    "-id < 0",
    "lower(name) = 'bob' AND upper(status) = 'PAID'",
    "length(name) > 3 AND char_length(name) < 10",
    "trim(name) = 'bob'",
    "coalesce(status, 'none') = 'none'",
    "abs(amount) > 1.5 AND round(amount, 2) = 3.14 AND round(amount) = 3",
    "date(created_at) = '2024-01-01'",
    "substr(name, 1, 2) = 'bo' AND substring(name, 2) = 'ob'",
    "CAST(id AS VARCHAR(10)) = '1' AND CAST(amount AS DECIMAL(10, 2)) > 1",
    "created_at >= '2024-01-01' AND created_at < '2025-01-01'",
    "date = '2024-01-01'",
    "TRUE",
    "id = 1 AND TRUE",
    "users.id = 1",
    "id = 1e3",
    "amount = NULL",
]

# (filter, a word the message must contain)
REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("id", "not a condition"),
    ("1", "not a condition"),
    ("'x'", "not a condition"),
    ("lower(name)", "not a condition"),
    ("NOT id", "NOT"),
    ("id = 1 AND 2", "AND"),
    ("name OR id = 1", "OR"),
    ("id = 1 -- and the rest", "comment"),
    ("id = 1 /* hidden */", "comment"),
    ("/* only a comment */", "comment"),
    ("id = 1; DROP TABLE users", "semicolon"),
    ("id = (SELECT max(id) FROM users)", "subquery"),
    ("id IN (SELECT id FROM orders)", "subquery"),
    ("EXISTS (SELECT 1 FROM orders)", "subquery"),
    ("id = ANY(ARRAY[1, 2])", "subquery"),
    ("pg_sleep(5) IS NULL", "pg_sleep"),
    ("sleep(5) = 0", "sleep"),
    ("now() > created_at", "not allowed in a filter"),
    ("concat(name, 'x') = 'y'", "concat"),
    ("id = ?", "placeholder"),
    ("id = :id", "placeholder"),
    ("id = $1", "placeholder"),
    ("id = @x", "variable"),
    ("*", "*"),
    ("users.* = 1", "*"),
    ("total > 5", "'total'"),
    ("orders.id = 1", "orders.id"),
    ("shop.users.id = 1", "shop.users.id"),
    ("\"NAME\" = 'x'", "'NAME'"),
    ("nаme = 'x'", "columns are"),  # Cyrillic а
    ("name IS TRUE", "IS NULL"),
    ("id IN (1, id)", "values"),
    ("trim(BOTH 'x' FROM name) = 'y'", "TRIM"),
    ("CAST(id AS signed) = 1", "casts"),
    ("CAST(id AS json) IS NULL", "casts"),
    ("name LIKE 'a!%' ESCAPE '!'", "ESCAPE"),
    ("id = x'41'", "literal"),
    ("id = 1 OR", "single condition"),
    ("id = = 1", "single condition"),
    ("name = 'unterminated", "unclosed quote"),
    ("id = 1 UNION SELECT password FROM admins", "single condition"),
    ("name = 'a' || 'b'", "||"),
    ("id <=> 1", "<=>"),
    ("created_at > now() - INTERVAL '1 day'", "INTERVAL"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("text", ACCEPTED)
def test_allowed_condition_parses(text: str, dialect: str) -> None:
    assert filter_problems(text, COLUMNS, dialect, "users") == []
    assert isinstance(parse_filter(text, COLUMNS, dialect, "users"), exp.Expression)


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_disallowed_filter_is_rejected_with_its_reason(text: str, reason: str) -> None:
    problems = filter_problems(text, COLUMNS, "postgres", "users")
    assert problems, f"{text!r} was accepted"
    assert any(reason.lower() in p.lower() for p in problems), problems
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text, COLUMNS, "postgres", "users")
    assert reason.lower() in str(caught.value).lower()


@pytest.mark.parametrize(
    ("dialect", "text", "reason"),
    [
        ("mysql", "id = 1 # trailing", "comment"),
        ("mysql", "id = 1 /*! OR 1=1 */", "comment"),
        ("mysql", "id = 1 /*+ hint */", "comment"),
        ("sqlite", "id = 1 -- x", "comment"),
        ("mysql", "id = `other`", "'other'"),
        ("sqlite", "id = [other]", "'other'"),
        ("mysql", "date(created_at) = curdate()", "not allowed in a filter"),
        ("sqlite", "load_extension('x') IS NULL", "load_extension"),
    ],
)
def test_dialect_specific_tricks_are_rejected(dialect: str, text: str, reason: str) -> None:
    problems = filter_problems(text, COLUMNS, dialect, "users")
    assert any(reason.lower() in p.lower() for p in problems), problems


def test_mysql_backslash_escaped_quote_stays_inside_the_literal() -> None:
    tree = parse_filter("name = 'a\\' OR 1=1 -- '", COLUMNS, "mysql", "users")
    (literal,) = tree.find_all(exp.Literal)
    assert literal.this == "a' OR 1=1 -- "


def test_invalid_filter_is_an_invalid_request() -> None:
    assert issubclass(InvalidFilter, InvalidRequest)


def test_unknown_column_message_lists_the_columns() -> None:
    (problem,) = filter_problems("total > 5", COLUMNS, "sqlite", "users")
    assert problem == (
        "the filter of table 'users' uses column 'total', which table 'users' does not have; "
        "its columns are: id, name, Amount, created_at, status, date"
    )


def test_every_unknown_column_is_named() -> None:
    problems = filter_problems("a = 1 AND b = 2", COLUMNS, "sqlite", "users")
    assert len(problems) == 2


def test_column_names_are_rewritten_to_the_tables_spelling() -> None:
    tree = parse_filter("AMOUNT > 1 AND Users.NAME = 'x'", COLUMNS, "postgres", "users")
    names = sorted(c.name for c in tree.find_all(exp.Column))
    assert names == ["Amount", "name"]
    assert all(c.args.get("table") is None for c in tree.find_all(exp.Column))


def test_quoted_column_must_match_exactly() -> None:
    assert filter_problems('"Amount" > 1', COLUMNS, "postgres", "users") == []
    assert filter_problems('"amount" > 1', COLUMNS, "postgres", "users")


def test_ambiguous_case_insensitive_match_is_refused() -> None:
    problems = filter_problems("id = 1", ["ID", "Id"], "sqlite", "t")
    assert problems and "does not have" in problems[0]


def test_filter_without_table_name_refuses_any_qualifier() -> None:
    (problem,) = filter_problems("users.id = 1", COLUMNS, "sqlite")
    assert "unqualified" in problem


def test_filter_over_the_length_limit_is_rejected() -> None:
    text = "id = 1 OR " * (MAX_FILTER_CHARS // 10) + "id = 2"
    (problem,) = filter_problems(text, COLUMNS, "sqlite", "users")
    assert "characters long" in problem


def test_long_chain_of_conditions_within_the_limit_is_accepted() -> None:
    text = " OR ".join(f"id = {i}" for i in range(300))
    assert len(text) < MAX_FILTER_CHARS
    assert filter_problems(text, COLUMNS, "postgres", "users") == []


@pytest.mark.parametrize("depth", [60, 200, 1500])
def test_deep_nesting_is_rejected_cleanly(depth: int) -> None:
    text = "(" * depth + "id = 1" + ")" * depth
    (problem,) = filter_problems(text[:MAX_FILTER_CHARS], COLUMNS, "postgres", "users")
    assert "nested" in problem or "single condition" in problem


def test_deep_function_nesting_is_rejected_cleanly() -> None:
    text = "lower(" * 80 + "name" + ")" * 80 + " = 'x'"
    (problem,) = filter_problems(text, COLUMNS, "mysql", "users")
    assert "nested" in problem


def test_moderate_nesting_is_accepted() -> None:
    text = "(" * 20 + "id = 1" + ")" * 20
    assert filter_problems(text, COLUMNS, "sqlite", "users") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(DIALECTS))
def test_any_text_gets_an_answer_not_an_exception(text: str, dialect: str) -> None:
    try:
        tree = parse_filter(text, COLUMNS, dialect, "users")
    except InvalidFilter as exc:
        assert str(exc)
    else:
        assert all(c.name in COLUMNS for c in tree.find_all(exp.Column))


_PIECES = "id|name|=|<>|(|)|'|'x'|1|AND|OR|NOT|IN|,|--|/*|*/|;|SELECT|lower|sleep|.|*|?|:a"
FILTERISH = st.lists(st.sampled_from([*_PIECES.split("|"), " "]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(FILTERISH, st.sampled_from(DIALECTS))
def test_accepted_filters_hold_only_allowed_nodes(text: str, dialect: str) -> None:
    try:
        tree = parse_filter(text, COLUMNS, dialect, "users")
    except InvalidFilter:
        return
    refused = (exp.Select, exp.Subquery, exp.Anonymous, exp.Placeholder, exp.Star, exp.Semicolon)
    assert not any(isinstance(node, refused) for node in tree.walk())
