"""The rule syntaxes people write: one line per column, and the CLI's short form."""

from __future__ import annotations

import pytest

from service.domain.generators import ColumnGenerator
from woxqaq.generator_rules import RuleError, format_rule, parse_rule, parse_rules


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "email: faker email zh_CN",
            ColumnGenerator("email", "faker", {"provider": "email", "locale": "zh_CN"}),
        ),
        ("age: int 18 80", ColumnGenerator("age", "int", {"min": "18", "max": "80"})),
        (
            "status: choice paid,refunded weights 9,1",
            ColumnGenerator("status", "choice", {"values": "paid,refunded", "weights": "9,1"}),
        ),
        (
            "status: choice paid, refunded weights 9, 1",
            ColumnGenerator("status", "choice", {"values": "paid, refunded", "weights": "9, 1"}),
        ),
        ("note: null 0.3", ColumnGenerator("note", "", {}, 0.3)),
        ("note: null", ColumnGenerator("note", "", {}, 1.0)),
        (
            "code: text min_len=4 max_len=8",
            ColumnGenerator("code", "text", {"min_len": "4", "max_len": "8"}),
        ),
        ("id: sequence 100 5", ColumnGenerator("id", "sequence", {"start": "100", "step": "5"})),
        (
            "amount: decimal 0 99.99 2 null 0.1",
            ColumnGenerator("amount", "decimal", {"min": "0", "max": "99.99", "scale": "2"}, 0.1),
        ),
        (
            "user_id: ref users.id",
            ColumnGenerator("user_id", "ref", {"table": "users", "column": "id"}),
        ),
        (
            "user_id: ref users id",
            ColumnGenerator("user_id", "ref", {"table": "users", "column": "id"}),
        ),
        (
            "greeting: constant hello world  # a comment",
            ColumnGenerator("greeting", "constant", {"value": "hello world"}),
        ),
        ("flag: constant null", ColumnGenerator("flag", "constant", {"value": "null"})),
        (
            "created_at: timestamp 2025-01-01T00:00:00 2025-06-30T23:59:59",
            ColumnGenerator(
                "created_at",
                "timestamp",
                {"start": "2025-01-01T00:00:00", "end": "2025-06-30T23:59:59"},
            ),
        ),
        ("uid: uuid", ColumnGenerator("uid", "uuid", {})),
        (
            "name: faker 'name' null 0.25",
            ColumnGenerator("name", "faker", {"provider": "name"}, 0.25),
        ),
        # the short form
        ("email=faker:email", ColumnGenerator("email", "faker", {"provider": "email"})),
        ("age=int:18:80", ColumnGenerator("age", "int", {"min": "18", "max": "80"})),
        ("age=int:18 80", ColumnGenerator("age", "int", {"min": "18", "max": "80"})),
        (
            "status=choice:paid,refunded:weights:9,1",
            ColumnGenerator("status", "choice", {"values": "paid,refunded", "weights": "9,1"}),
        ),
        (
            "created_at=timestamp:2025-01-01T00:00 2025-06-30T00:00",
            ColumnGenerator(
                "created_at", "timestamp", {"start": "2025-01-01T00:00", "end": "2025-06-30T00:00"}
            ),
        ),
        ("uid=uuid", ColumnGenerator("uid", "uuid", {})),
        ("note=null:0.3", ColumnGenerator("note", "", {}, 0.3)),
    ],
)
def test_a_rule_reads_to_its_generator(text: str, expected: ColumnGenerator) -> None:
    assert parse_rule(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("age int 18 80", "is not a rule: write `column: kind args`"),
        ("age:", "names no kind"),
        ("age: integer 1 2", "kind 'integer' is not known; use one of: sequence, int"),
        ("age: int 1 2 3", "int takes min max; '3' is extra"),
        ("note: null 1.5", "null '1.5' is not a share between 0 and 1"),
        ("note: null 0.1 0.2", "null takes one share"),
        ("s: choice a,b weights", "weights needs numbers"),
        ("s: constant 'open", "has a quote that is not closed"),
    ],
)
def test_a_bad_rule_says_what_to_fix(text: str, said: str) -> None:
    with pytest.raises(RuleError, match=None) as err:
        parse_rule(text)
    assert said in str(err.value)


def test_rules_skip_blank_and_comment_lines_and_list_every_bad_line() -> None:
    good = parse_rules(["# users", "", "age: int 1 9", "  email: faker email"])
    assert [g.column for g in good] == ["age", "email"]
    with pytest.raises(RuleError) as err:
        parse_rules(["age: int 1 9", "oops", "x: what"])
    assert str(err.value).startswith("rule 2: `oops` is not a rule")
    assert "rule 3: `x: what`" in str(err.value)


@pytest.mark.parametrize(
    "gen",
    [
        ColumnGenerator("email", "faker", {"provider": "email", "locale": "zh_CN"}, 0.1),
        ColumnGenerator("greeting", "constant", {"value": "hello, world # not a comment"}),
        ColumnGenerator("note", "", {}, 0.3),
        ColumnGenerator("status", "choice", {"values": "a b,c", "weights": "1,2"}),
    ],
)
def test_a_formatted_generator_reads_back_the_same(gen: ColumnGenerator) -> None:
    assert parse_rule(format_rule(gen)) == gen
