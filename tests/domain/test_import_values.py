"""Each column kind's fast path for CSV text decides every cell as the full converter does:
the same value, or the same refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.imports import (
    BadValue,
    TargetColumn,
    ValueKind,
    _full_converter,
    converter,
    text_passer,
    text_row,
)

COLUMNS = [
    TargetColumn("code", ValueKind.TEXT, nullable=False, length=5),
    TargetColumn("note", ValueKind.TEXT, length=3),
    TargetColumn("qty", ValueKind.INTEGER, min_int=-100, max_int=100),
    TargetColumn("big", ValueKind.INTEGER),
    TargetColumn("price", ValueKind.DECIMAL, nullable=False, precision=5, scale=2),
    TargetColumn("whole", ValueKind.DECIMAL, precision=3, scale=0),
    TargetColumn("fraction", ValueKind.DECIMAL, precision=2, scale=2),
    TargetColumn("day", ValueKind.DATE),
]

# Text near each kind's shapes: digits, signs, points, dates, spaces, odd characters.
cells = st.one_of(
    st.text(alphabet="0123456789-+._ eE:T\x00٣", max_size=12),
    st.text(max_size=8),
    st.dates().map(lambda d: d.isoformat()),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.integers(-1000, 1000).map(str),
    st.none(),
    st.integers(-1000, 1000),
)


def outcome(convert: Callable[[Any], Any], cell: Any) -> tuple[str, Any]:
    try:
        value = convert(cell)
    except BadValue as exc:
        return "refused", str(exc)
    return type(value).__name__, value


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
@settings(max_examples=400, deadline=None)
@given(cell=cells)
def test_the_fast_path_decides_each_cell_as_the_full_converter(
    column: TargetColumn, cell: Any
) -> None:
    assert outcome(converter(column), cell) == outcome(_full_converter(column), cell)


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        (COLUMNS[0], "ab", ("str", "ab")),
        (COLUMNS[0], "", ("str", "")),
        (COLUMNS[1], "", ("NoneType", None)),
        (COLUMNS[2], " 7 ", ("int", 7)),
        (COLUMNS[2], "1_0", ("refused", "is not a whole number")),
        (COLUMNS[2], "101", ("refused", "is above the column's largest value 100")),
        (COLUMNS[4], "-012.5", ("Decimal", Decimal("-12.5"))),
        (COLUMNS[4], "1.505", ("refused", "has 3 decimal places; the column keeps 2")),
        (
            COLUMNS[4],
            "1000",
            ("refused", "has 4 digits before the point; the column holds 3 (numeric(5,2))"),
        ),
        (COLUMNS[7], " 2030-01-02 ", ("date", date(2030, 1, 2))),
    ],
)
def test_cells_a_fast_path_hands_to_the_full_converter(
    column: TargetColumn, cell: str, expected: tuple[str, Any]
) -> None:
    assert outcome(converter(column), cell) == expected


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: c.name)
@pytest.mark.parametrize("cell", ["", None], ids=["empty", "missing"])
def test_a_text_passer_decides_an_empty_or_missing_cell_as_the_converter(
    column: TargetColumn, cell: str | None
) -> None:
    expected = outcome(converter(column), cell)
    if expected[0] != "refused":  # the pre-check refused the file: no run reads it
        assert outcome(text_passer(column), cell) == expected


@settings(max_examples=300, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(range(len(COLUMNS))), min_size=1, unique=True),
    row=st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=4)), min_size=10, max_size=10),
)
def test_a_text_row_decides_each_cell_as_its_columns_text_passer(
    chosen: list[int], row: list[str | None]
) -> None:
    columns = [COLUMNS[i] for i in chosen]
    positions = [len(row) - 1 - i for i in chosen]  # any order, not the file's
    expected = tuple(text_passer(c)(row[p]) for c, p in zip(columns, positions, strict=True))
    assert text_row(columns, positions)(row) == expected
