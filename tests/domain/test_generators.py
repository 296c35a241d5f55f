"""Generators (CONTRACT §12) on described columns: bounds, fit, uniqueness, seeds, proposals."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.domain.generators import (
    FAKER_POOL,
    ColumnGenerator,
    ColumnInfo,
    ColumnType,
    Plan,
    RowSource,
    compile_rows,
    plan,
    proposals,
    render,
    split_list,
)

TODAY = date(2026, 11, 30)
T = ColumnType


def col(name: str, type_: ColumnType = T.TEXT, type_name: str = "", **kw: Any) -> ColumnInfo:
    return ColumnInfo(name, type_, type_name or type_.value, **kw)


INT4 = {"int_min": -(2**31), "int_max": 2**31 - 1}
SMALLINT = {"int_min": -32768, "int_max": 32767}


def source(
    columns: list[ColumnInfo],
    rules: list[ColumnGenerator],
    rows: int = 1000,
    seed: int = 7,
    refs: dict[tuple[str, str], list[Any]] | None = None,
) -> tuple[RowSource, Plan]:
    p, problems = plan(columns, rules, TODAY)
    assert problems == []
    src, final, problems = compile_rows(
        columns, p, rows=rows, seed=seed, refs=refs or {}, today=TODAY
    )
    assert problems == [], problems
    assert src is not None
    return src, final


def problems_of(
    columns: list[ColumnInfo], rules: list[ColumnGenerator], rows: int = 1000, **kw: Any
) -> list[str]:
    p, problems = plan(columns, rules, TODAY)
    if problems:
        return problems
    _, _, problems = compile_rows(
        columns, p, rows=rows, seed=1, refs=kw.get("refs", {}), today=TODAY
    )
    return problems


def values(column: ColumnInfo, kind: str, rows: int = 2000, **params: str) -> list[Any]:
    src, _ = source([column], [ColumnGenerator(column.name, kind, params)], rows=rows)
    return [r[0] for r in src.take(rows)]


# -- every kind within its bounds ----------------------------------------------------------


def test_sequence_counts_from_start_by_step() -> None:
    assert values(col("n", T.INTEGER, **INT4), "sequence", rows=4, start="10", step="5") == [
        10,
        15,
        20,
        25,
    ]


def test_int_stays_within_min_and_max_and_reaches_both() -> None:
    got = values(col("age", T.INTEGER, **SMALLINT), "int", min="18", max="22")
    assert set(got) == {18, 19, 20, 21, 22}


def test_decimal_is_rounded_to_scale_within_bounds() -> None:
    got = values(col("amount", T.DECIMAL, precision=8, scale=2), "decimal", min="1.5", max="9.99")
    assert all(Decimal("1.50") <= v <= Decimal("9.99") for v in got)
    assert all(v.as_tuple().exponent == -2 for v in got)
    assert len(set(got)) > 100


def test_choice_follows_its_weights() -> None:
    got = values(col("status"), "choice", rows=10_000, values="paid,refunded", weights="9,1")
    assert set(got) == {"paid", "refunded"}
    assert 0.85 < got.count("paid") / len(got) < 0.95


def test_date_and_timestamp_stay_in_their_range() -> None:
    days = values(col("d", T.DATE), "date", start="2025-01-01", end="2025-01-31")
    assert min(days) >= date(2025, 1, 1) and max(days) <= date(2025, 1, 31)
    assert len(set(days)) == 31
    times = values(
        col("t", T.TIMESTAMP, timezone=True),
        "timestamp",
        start="2025-03-01T08:00:00",
        end="2025-03-01T09:00:00",
    )
    assert all(
        datetime(2025, 3, 1, 8, tzinfo=UTC) <= t <= datetime(2025, 3, 1, 9, tzinfo=UTC)
        for t in times
    )


def test_timestamp_into_a_column_without_zone_is_naive_utc() -> None:
    (t,) = values(
        col("t", T.TIMESTAMP),
        "timestamp",
        rows=1,
        start="2025-03-01T10:00:00+02:00",
        end="2025-03-01T08:00:00Z",
    )
    assert t == datetime(2025, 3, 1, 8, 0)


def test_text_is_letters_and_digits_of_the_given_lengths() -> None:
    got = values(col("code", length=10), "text", min_len="3", max_len="6")
    assert all(re.fullmatch(r"[A-Za-z0-9]{3,6}", v) for v in got)
    assert {len(v) for v in got} == {3, 4, 5, 6}


def test_uuid_gives_distinct_version_4_uuids() -> None:
    got = values(col("id", T.UUID, unique=True), "uuid")
    assert len(set(got)) == len(got)
    assert all(uuid.UUID(v).version == 4 and str(uuid.UUID(v)) == v for v in got)


def test_constant_is_converted_to_the_column_type() -> None:
    assert set(values(col("n", T.INTEGER, **INT4), "constant", value="42")) == {42}
    assert set(values(col("ok", T.BOOLEAN), "constant", value="true")) == {True}


def test_faker_gives_locale_values_and_stays_fast_past_its_pool() -> None:
    rows = FAKER_POOL + 5000
    got = values(col("name", length=50), "faker", rows=rows, provider="name", locale="zh_CN")
    assert all(re.search(r"[\u4e00-\u9fff]", v) for v in got[:50])
    # The first pool's worth are Faker's own values in order; later rows repeat them.
    assert set(got[FAKER_POOL:]) <= set(got[:FAKER_POOL])


def test_ref_picks_only_the_given_values() -> None:
    refs = {("users", "id"): [3, 5, 8]}
    src, _ = source(
        [col("user_id", T.INTEGER, **INT4)],
        [ColumnGenerator("user_id", "ref", {"table": "users", "column": "id"})],
        refs=refs,
    )
    got = [r[0] for r in src.take(500)]
    assert set(got) == {3, 5, 8}


def test_null_ratio_gives_about_that_share_of_nulls_without_moving_the_values() -> None:
    c = col("n", T.INTEGER, **INT4)
    plain, _ = source([c], [ColumnGenerator("n", "int", {"min": "1", "max": "1000000"})])
    nulled, _ = source([c], [ColumnGenerator("n", "int", {"min": "1", "max": "1000000"}, 0.3)])
    a, b = plain.take(10_000), nulled.take(10_000)
    nulls = sum(1 for (v,) in b if v is None)
    assert 2500 < nulls < 3500
    assert all(y == x or y is None for (x,), (y,) in zip(a, b, strict=True))


# -- seeds -----------------------------------------------------------------------------------


COLUMNS = [
    col("id", T.INTEGER, nullable=False, unique=True, **INT4),
    col("email", length=100),
    col("age", T.INTEGER, **SMALLINT),
    col("amount", T.DECIMAL, precision=10, scale=2),
    col("created_at", T.TIMESTAMP),
    col("uid", T.UUID, unique=True),
]


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    one, _ = source(COLUMNS, [], seed=42)
    two, _ = source(COLUMNS, [], seed=42)
    other, _ = source(COLUMNS, [], seed=43)
    a = one.take(500) + one.take(500)
    assert a == two.take(1000)  # batch boundaries do not matter
    assert a != other.take(1000)


def test_a_column_added_or_changed_leaves_the_others_values_alone() -> None:
    base, _ = source(COLUMNS[:3], [ColumnGenerator("age", "int", {"min": "1", "max": "9"})])
    more, _ = source(
        [*COLUMNS[:3], COLUMNS[5]], [ColumnGenerator("age", "int", {"min": "30", "max": "40"})]
    )
    a, b = base.take(200), more.take(200)
    assert [(r[0], r[1]) for r in a] == [(r[0], r[1]) for r in b]


# -- checked against the column --------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "rule", "said"),
    [
        (
            col("age", T.INTEGER, type_name="smallint", **SMALLINT),
            ColumnGenerator("age", "int", {"min": "1", "max": "40000"}),
            "above the largest smallint",
        ),
        (
            col("code", type_name="varchar(4)", length=4),
            ColumnGenerator("code", "text", {"max_len": "8"}),
            "longer than varchar(4) holds (4)",
        ),
        (
            col("code", type_name="varchar(4)", length=4),
            ColumnGenerator("code", "choice", {"values": "ok,toolong"}),
            "'toolong': 7 characters",
        ),
        (
            col("amount", T.DECIMAL, type_name="numeric(5,2)", precision=5, scale=2),
            ColumnGenerator("amount", "decimal", {"min": "0", "max": "5000"}),
            "more than 3 digits before the point",
        ),
        (
            col("amount", T.DECIMAL, type_name="numeric(5,2)", precision=5, scale=2),
            ColumnGenerator("amount", "decimal", {"scale": "3"}),
            "scale 3 has more digits",
        ),
        (
            col("d", T.DATE),
            ColumnGenerator("d", "timestamp", {}),
            "timestamp fills timestamp or text columns; this one is date",
        ),
        (
            col("n", T.INTEGER, **INT4),
            ColumnGenerator("n", "constant", {"value": "abc"}),
            "'abc' is not a whole-number value",
        ),
        (
            col("n", T.INTEGER, nullable=False, **INT4),
            ColumnGenerator("n", "int", {}, 0.2),
            "is NOT NULL",
        ),
        (
            col("code", unique=True),
            ColumnGenerator("code", "text", {}),
            "unique and random text may repeat",
        ),
        (
            col("n", T.INTEGER, unique=True, **INT4),
            ColumnGenerator("n", "int", {"min": "1", "max": "10"}),
            "10 values for 1,000 rows",
        ),
        (
            col("n", T.INTEGER, unique=True, **INT4),
            ColumnGenerator("n", "constant", {"value": "1"}),
            "a constant repeats",
        ),
        (
            col("s"),
            ColumnGenerator("s", "faker", {"provider": "no_such_thing"}),
            "Faker has no provider 'no_such_thing'",
        ),
        (
            col("s"),
            ColumnGenerator("s", "faker", {"provider": "seed_instance"}),
            "Faker has no provider",
        ),
        (
            col("s"),
            ColumnGenerator("s", "faker", {"provider": "name", "locale": "xx_XX"}),
            "Faker has no locale 'xx_XX'",
        ),
        (
            col("s"),
            ColumnGenerator("s", "choice", {"values": "a,b", "weights": "1"}),
            "1 weights for 2 values",
        ),
        (col("s"), ColumnGenerator("s", "int", {"min": "9", "max": "1"}), "min 9 is after max 1"),
        (col("s"), ColumnGenerator("s", "sequence", {"step": "0"}), "step 0"),
        (col("s"), ColumnGenerator("s", "int", {"min": "x"}), "min='x' is not a whole number"),
        (col("s"), ColumnGenerator("s", "magic", {}), "kind 'magic' is not known"),
        (
            col("s"),
            ColumnGenerator("s", "int", {"low": "1"}),
            "int takes no low (its parameters: min, max)",
        ),
        (col("s"), ColumnGenerator("nope", "int", {}), "column `nope` is not in the table"),
        (
            col("u", T.INTEGER, **INT4),
            ColumnGenerator("u", "ref", {"table": "users", "column": "id"}),
            "users.id has no values to refer to",
        ),
        (
            col("u", T.INTEGER, type_name="smallint", **SMALLINT),
            ColumnGenerator("u", "ref", {"table": "users", "column": "id"}),
            "users.id holds '99999': above the largest smallint",
        ),
    ],
)
def test_an_unfit_generator_is_refused_naming_its_column(
    column: ColumnInfo, rule: ColumnGenerator, said: str
) -> None:
    refs = {("users", "id"): [99999] if column.type_name == "smallint" else []}
    problems = problems_of([column], [rule], refs=refs)
    assert len(problems) == 1, problems
    assert f"column `{rule.column}`" in problems[0]
    assert said in problems[0]


def test_unique_columns_get_distinct_values_from_ranges_choices_and_refs() -> None:
    ints = values(col("n", T.INTEGER, unique=True, **INT4), "int", rows=1000, min="1", max="1000")
    assert sorted(ints) == list(range(1, 1001))
    picks = values(col("c", unique=True), "choice", rows=3, values="a,b,c")
    assert sorted(picks) == ["a", "b", "c"]


def test_faker_on_a_unique_column_gives_distinct_values_up_to_its_pool() -> None:
    got = values(col("email", unique=True), "faker", rows=2000, provider="email")
    assert len(set(got)) == 2000
    (problem,) = problems_of(
        [col("email", unique=True)],
        [ColumnGenerator("email", "faker", {"provider": "email"})],
        rows=FAKER_POOL + 1,
    )
    assert problem.startswith("column `email`: the column is unique and faker email gave")
    assert "use sequence or uuid" in problem


def test_a_not_null_column_no_generator_fits_is_a_problem() -> None:
    problems = problems_of([col("doc", T.OTHER, type_name="jsonb", nullable=False)], [])
    assert problems == [
        "column `doc` (jsonb) is NOT NULL without a default and no generator fits its type: "
        "name one, e.g. `constant value=…`"
    ]


# -- proposals -------------------------------------------------------------------------------


def test_proposals_follow_the_column_name_and_type() -> None:
    columns = [
        col("id", T.INTEGER, autoincrement=True, has_default=True, nullable=False, **INT4),
        col("email", length=120),
        col("created_at", T.TIMESTAMP, timezone=True),
        col("user_id", T.INTEGER, ref=("users", "id"), **INT4),
        col("status", enum_values=("new", "paid")),
        col("updated_at", T.TIMESTAMP, has_default=True),
        col("client_ip", length=45),
        col("zipper", length=20),
    ]
    p, problems = plan(columns, [], TODAY)
    assert problems == []
    kinds = {g.column: (g.kind, dict(g.params)) for g in p.generators}
    assert p.left_out == ("id", "updated_at")
    assert kinds["email"] == ("faker", {"provider": "email"})
    assert kinds["created_at"] == (
        "timestamp",
        {"start": "2025-11-30T00:00:00", "end": "2026-11-30T00:00:00"},
    )
    assert kinds["user_id"] == ("ref", {"table": "users", "column": "id"})
    assert kinds["status"] == ("choice", {"values": "new,paid"})
    assert kinds["client_ip"] == ("faker", {"provider": "ipv4"})
    assert kinds["zipper"][0] == "text"  # `zip` is a word of a name, not any part of it
    assert all(pc.proposed for pc in p.columns)


def test_a_proposal_that_does_not_fit_falls_back_to_the_next() -> None:
    column = col("address", type_name="varchar(6)", length=6)
    assert proposals(column, TODAY)[0].kind == "faker"
    _, final = source([column], [])
    (used,) = final.generators
    assert used.kind == "text" and used.params["max_len"] == "6"


def test_a_unique_integer_proposal_starts_after_the_largest_existing_value() -> None:
    column = col("id", T.INTEGER, unique=True, nullable=False, max_existing=41, **INT4)
    assert values(
        column, "sequence", rows=2, start=proposals(column, TODAY)[0].params["start"]
    ) == [42, 43]


def test_a_null_rule_keeps_the_proposed_generator() -> None:
    _, final = source([col("email", length=100)], [ColumnGenerator("email", "", {}, 0.5)])
    (used,) = final.generators
    assert (used.kind, used.params["provider"], used.null_ratio) == ("faker", "email", 0.5)


def test_render_shows_values_as_they_are_written() -> None:
    assert render(None) is None
    assert render(Decimal("1.50")) == "1.50"
    assert render(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02 03:04:05+00:00"
    assert render(True) == "true"


def test_split_list_trims_and_keeps_escaped_commas() -> None:
    assert split_list(" a, b ,c") == ["a", "b", "c"]
    assert split_list(r"1\,5,2") == ["1,5", "2"]
    assert split_list("") == []


def test_a_foreign_key_whose_table_cannot_be_read_gets_no_made_up_values() -> None:
    fk = col("user_id", T.INTEGER, ref=("users", "id"), **INT4)
    assert [g.kind for g in proposals(fk, TODAY)] == ["ref"]
    p, _ = plan([fk], [], TODAY)
    _, final, problems = compile_rows([fk], p, rows=10, seed=1, refs={}, today=TODAY)
    assert problems == [] and final.left_out == ("user_id",)  # nullable: left NULL
    required = col("user_id", T.INTEGER, nullable=False, ref=("users", "id"), **INT4)
    p, _ = plan([required], [], TODAY)
    _, _, problems = compile_rows([required], p, rows=10, seed=1, refs={}, today=TODAY)
    assert problems == ["column `user_id`: users.id could not be read"]
