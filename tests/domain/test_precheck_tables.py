"""Table-mode pre-check against a live schema, and the dispatch between SQL and table mode."""

from __future__ import annotations

import pytest

from service.domain.model import ExportSpec, TableOption
from service.domain.precheck import check_export, check_table_export

SCHEMA = {
    "users": ["id", "name", "email", "created_at"],
    "orders": ["id", "user_id", "amount", "status"],
    "order_items": ["order_id", "sku", "qty"],
}


def spec(*tables: TableOption, export_all: bool = False, database: str = "shop") -> ExportSpec:
    return ExportSpec(database=database, tables=tables, export_all=export_all)


def test_existing_tables_with_all_fields_pass() -> None:
    s = spec(TableOption("users"), TableOption("orders"))
    assert check_table_export(s, SCHEMA, "postgres") == []


def test_chosen_fields_and_a_filter_pass() -> None:
    s = spec(TableOption("orders", all_fields=False, fields=("id", "amount"), filter="amount > 10"))
    assert check_table_export(s, SCHEMA, "mysql") == []


def test_no_table_and_no_export_all_asks_for_a_table() -> None:
    (problem,) = check_table_export(spec(), SCHEMA, "sqlite")
    assert "choose at least one table" in problem
    assert "export_all" in problem


def test_export_all_needs_no_table_list() -> None:
    assert check_table_export(spec(export_all=True), SCHEMA, "sqlite") == []


def test_export_all_of_an_empty_database_is_a_problem() -> None:
    (problem,) = check_table_export(spec(export_all=True), {}, "sqlite")
    assert "has no tables" in problem and "'shop'" in problem


def test_unknown_table_suggests_a_close_name() -> None:
    (problem,) = check_table_export(spec(TableOption("user")), SCHEMA, "postgres")
    assert problem == "table 'user' does not exist in database 'shop'; did you mean 'users'?"


def test_table_in_another_case_suggests_the_real_spelling() -> None:
    (problem,) = check_table_export(spec(TableOption("USERS")), SCHEMA, "postgres")
    assert "did you mean 'users'" in problem


def test_unknown_table_without_close_names_lists_the_tables() -> None:
    (problem,) = check_table_export(
        spec(TableOption("zzz")),
        SCHEMA,
        "postgres",
    )
    assert "its tables are: order_items, orders, users" in problem


def test_duplicate_table_is_reported_once() -> None:
    problems = check_table_export(
        spec(TableOption("users"), TableOption("users")), SCHEMA, "sqlite"
    )
    assert problems == ["table 'users' is listed twice: list each table once"]


def test_table_without_a_name_is_reported_by_position() -> None:
    (problem,) = check_table_export(spec(TableOption("users"), TableOption(" ")), SCHEMA, "sqlite")
    assert "table 2" in problem


def test_not_all_fields_needs_some_fields() -> None:
    (problem,) = check_table_export(spec(TableOption("users", all_fields=False)), SCHEMA, "sqlite")
    assert "no fields chosen" in problem


def test_unknown_field_names_the_table_and_suggests() -> None:
    (problem,) = check_table_export(
        spec(TableOption("users", all_fields=False, fields=("id", "mail"))), SCHEMA, "sqlite"
    )
    assert problem.startswith("table 'users' has no field 'mail'")
    assert "'email'" in problem


def test_unknown_field_without_close_names_lists_the_columns() -> None:
    (problem,) = check_table_export(
        spec(TableOption("orders", all_fields=False, fields=("xyz",))), SCHEMA, "sqlite"
    )
    assert "its fields are: amount, id, status, user_id" in problem


def test_duplicate_field_is_reported() -> None:
    (problem,) = check_table_export(
        spec(TableOption("users", all_fields=False, fields=("id", "id"))), SCHEMA, "sqlite"
    )
    assert "field 'id' is listed twice" in problem


def test_fields_are_not_checked_when_all_fields_is_set() -> None:
    s = spec(TableOption("users", all_fields=True, fields=("ignored",)))
    assert check_table_export(s, SCHEMA, "sqlite") == []


def test_bad_filter_names_its_table_and_the_columns() -> None:
    (problem,) = check_table_export(
        spec(TableOption("orders", filter="total > 5")), SCHEMA, "postgres"
    )
    assert "filter of table 'orders'" in problem
    assert "'total'" in problem and "id, user_id, amount, status" in problem


def test_every_problem_of_a_request_is_reported_together() -> None:
    s = spec(
        TableOption("nope"),
        TableOption("users", all_fields=False, fields=("bogus",)),
        TableOption("orders", filter="1; DROP TABLE orders"),
    )
    problems = check_table_export(s, SCHEMA, "mysql")
    assert len(problems) == 3


def test_default_database_is_named_when_none_is_given() -> None:
    (problem,) = check_table_export(spec(TableOption("x"), database=""), SCHEMA, "sqlite")
    assert "the default database" in problem


def test_check_export_runs_the_sql_check_in_sql_mode() -> None:
    problems = check_export(ExportSpec(statement="DELETE FROM users"), "postgres", None)
    assert problems and "DELETE" in problems[0]


def test_check_export_accepts_a_query_without_a_schema() -> None:
    assert check_export(ExportSpec(statement="SELECT * FROM users"), "postgres", None) == []


def test_sql_together_with_tables_is_a_problem() -> None:
    s = ExportSpec(statement="SELECT 1", tables=(TableOption("users"),))
    (problem,) = check_export(s, "sqlite", SCHEMA)
    assert "not both" in problem


def test_sql_together_with_export_all_is_a_problem() -> None:
    (problem,) = check_export(ExportSpec(statement="SELECT 1", export_all=True), "sqlite", SCHEMA)
    assert "export_all" in problem


def test_check_export_checks_tables_in_table_mode() -> None:
    (problem,) = check_export(spec(TableOption("user")), "mysql", SCHEMA)
    assert "did you mean 'users'" in problem


def test_table_mode_without_a_schema_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="live schema"):
        check_export(spec(TableOption("users")), "mysql", None)
