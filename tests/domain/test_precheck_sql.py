"""The SQL-mode pre-check: exactly one read-only query passes; everything else is named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from service.domain.precheck import MAX_STATEMENT_CHARS, check_sql

ACCEPTED = [
    ("postgres", "SELECT 1"),
    ("postgres", "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id"),
    ("postgres", "WITH recent AS (SELECT * FROM orders WHERE id > 10) SELECT * FROM recent"),
    ("postgres", "SELECT a FROM t UNION ALL SELECT a FROM u"),
    ("postgres", "(SELECT a FROM t) EXCEPT (SELECT a FROM u)"),
    ("postgres", "((SELECT 1))"),
    ("postgres", "SELECT 'DELETE FROM users; DROP TABLE users' AS text"),
    ("postgres", "SELECT * FROM t -- a trailing note that mentions DROP TABLE\n"),
    ("postgres", "SELECT /* INSERT INTO x */ count(*) FROM t;"),
    ("postgres", "SELECT $$pg_sleep(10)$$ AS quoted"),
    ("postgres", 'SELECT "delete" FROM "update"'),
    ("postgres", "SELECT x::int, now(), coalesce(a, b) FROM t WHERE a = ANY(ARRAY[1, 2])"),
    ("postgres", "SELECT * FROM (VALUES (1), (2)) AS v(n)"),
    ("postgres", "SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM t"),
    (
        "postgres",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
        "SELECT * FROM n",
    ),
    ("mysql", "SELECT `order`, `select` FROM `table` WHERE `key` = 'x'"),
    ("mysql", "SELECT * FROM t WHERE name LIKE 'a%' LIMIT 10"),
    ("mysql", "SELECT a FROM t INTERSECT SELECT a FROM u"),
    ("mysql", "SELECT * FROM t # a MySQL line comment\n"),
    ("mysql", "SELECT DATE_FORMAT(created_at, '%Y-%m') AS month, COUNT(*) FROM t GROUP BY 1"),
    ("mysql", "SELECT 'it''s', \"double\" FROM t WHERE id IN (1, 2, 3)"),
    ("sqlite", "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE flag = 1)"),
    ("sqlite", "SELECT date('now'), strftime('%Y', created_at) FROM t"),
    ("sqlite", "SELECT [weird name] FROM t"),
    ("sqlite", "SELECT 'it\\' AS backslash_is_plain_text_in_sqlite"),
    ("sqlite", "SELECT 1;;"),
    ("sqlite", "SELECT json_extract(payload, '$.a') FROM events"),
]

# (dialect, statement, a word the message must contain)
REJECTED = [
    # empty and several statements
    ("postgres", "", "empty"),
    ("postgres", "   \n\t", "empty"),
    ("postgres", "-- only a comment", "no query"),
    ("sqlite", ";;", "no query"),
    ("postgres", "SELECT 1; DROP TABLE users", "2 statements"),
    ("postgres", "SELECT 1; DROP TABLE users", "DROP"),
    ("mysql", "SELECT 1;DELETE FROM users", "DELETE"),
    ("sqlite", "SELECT 1; SELECT 2", "2 statements"),
    # DML and DDL at the top
    ("postgres", "DELETE FROM users", "DELETE"),
    ("postgres", "UPDATE users SET admin = true", "UPDATE"),
    ("mysql", "INSERT INTO users VALUES (1)", "INSERT"),
    ("mysql", "REPLACE INTO users VALUES (1)", "REPLACE"),
    ("postgres", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
    ("postgres", "CREATE TABLE t AS SELECT 1", "CREATE"),
    ("sqlite", "DROP TABLE users", "DROP"),
    ("mysql", "ALTER TABLE users ADD COLUMN x INT", "ALTER"),
    ("postgres", "TRUNCATE users", "TRUNCATE"),
    ("postgres", "GRANT ALL ON users TO public", "GRANT"),
    ("postgres", "SET statement_timeout = 0", "SET"),
    ("mysql", "SET @@session.sql_mode = ''", "SET"),
    ("sqlite", "PRAGMA writable_schema = 1", "PRAGMA"),
    ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
    ("postgres", "BEGIN", "BEGIN"),
    ("postgres", "VALUES (1)", "VALUES"),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM users", "EXPLAIN"),
    ("postgres", "LISTEN channel", "LISTEN"),
    # commands
    ("postgres", "COPY users TO '/tmp/users.csv'", "COPY"),
    ("postgres", "COPY (SELECT 1) TO PROGRAM 'id'", "COPY"),
    ("postgres", "CALL refresh_everything()", "CALL"),
    ("mysql", "CALL refresh_everything()", "CALL"),
    ("postgres", "EXECUTE prepared_delete", "EXECUTE"),
    ("postgres", "DO $$ BEGIN DELETE FROM users; END $$", "DO"),
    ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "LOAD DATA"),
    ("mysql", "HANDLER users OPEN", "HANDLER"),
    # DML hidden inside a query
    ("postgres", "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone", "CTE"),
    ("postgres", "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone", "DELETE"),
    ("postgres", "WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM x", "UPDATE"),
    ("postgres", "WITH x AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT 1", "INSERT"),
    # writes through SELECT
    ("postgres", "SELECT * INTO backup_users FROM users", "INTO"),
    ("mysql", "SELECT * FROM users INTO OUTFILE '/tmp/u.csv'", "OUTFILE"),
    ("mysql", "SELECT * FROM users INTO DUMPFILE '/tmp/u.bin'", "DUMPFILE"),
    ("mysql", "SELECT id INTO @x FROM users LIMIT 1", "INTO"),
    ("mysql", "SELECT a, b INTO @a, @b FROM users LIMIT 1", "SELECT … INTO"),
    # locking reads, at the top and nested
    ("postgres", "SELECT * FROM users FOR UPDATE", "FOR UPDATE"),
    ("postgres", "SELECT * FROM users FOR NO KEY UPDATE NOWAIT", "locking"),
    ("postgres", "SELECT * FROM users FOR SHARE", "FOR SHARE"),
    ("mysql", "SELECT * FROM users LOCK IN SHARE MODE", "LOCK IN SHARE MODE"),
    ("mysql", "SELECT * FROM users FOR UPDATE SKIP LOCKED", "FOR UPDATE"),
    ("postgres", "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)", "locking"),
    # side-effect, file, network and time functions
    ("postgres", "SELECT pg_sleep(10)", "pg_sleep"),
    ("postgres", "SELECT pg_catalog.pg_sleep(10)", "pg_sleep"),
    ("postgres", 'SELECT "pg_sleep"(10)', "pg_sleep"),
    ("postgres", "SELECT PG_SLEEP_FOR('5 minutes')", "pg_sleep_for"),
    ("postgres", "SELECT * FROM users WHERE id = 1 AND pg_sleep(5) IS NULL", "sleeps"),
    ("mysql", "SELECT SLEEP(5)", "sleep"),
    ("mysql", "SELECT `sleep`(5)", "sleep"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('x'))", "benchmark"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "load_file"),
    ("mysql", "SELECT GET_LOCK('x', 10)", "locks"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "files"),
    ("postgres", "SELECT * FROM pg_ls_dir('/')", "pg_ls_dir"),
    ("postgres", "SELECT lo_export(16385, '/tmp/x')", "lo_export"),
    ("postgres", "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", "network"),
    ("postgres", "SELECT dblink_exec('host=evil', 'DROP TABLE x')", "dblink_exec"),
    ("postgres", "SELECT nextval('users_id_seq')", "nextval"),
    ("postgres", "SELECT set_config('statement_timeout', '0', false)", "set_config"),
    ("postgres", "SELECT pg_terminate_backend(123)", "pg_terminate_backend"),
    ("postgres", "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("postgres", "SELECT pg_try_advisory_xact_lock_shared(1)", "locks"),
    ("postgres", "SELECT query_to_xml('DELETE FROM users RETURNING 1', true, false, '')", "text"),
    ("postgres", "SELECT pg_notify('ch', 'x')", "pg_notify"),
    ("postgres", "SELECT txid_current()", "txid_current"),
    ("sqlite", "SELECT load_extension('/tmp/evil.so')", "load_extension"),
    ("sqlite", "SELECT writefile('/tmp/x', 'y')", "writefile"),
    ("sqlite", "SELECT readfile('/etc/passwd')", "readfile"),
    ("sqlite", "SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
    # MySQL executable comments and hints, and comment tricks
    ("mysql", "SELECT 1 /*! , SLEEP(10) */", "executable comment"),
    ("mysql", "SELECT 1 /*!50000 UNION SELECT LOAD_FILE('/etc/passwd') */", "executable comment"),
    ("mysql", "SELECT 1; /*! DROP TABLE users */", "executable comment"),
    ("mysql", "SELECT /*+ MAX_EXECUTION_TIME(1) */ 1", "hint"),
    ("postgres", "SELECT /*! DROP TABLE users */ 1", "executable comment"),
    ("mysql", "SELECT 1 --sleep(10)\nFROM t", "sleep"),  # MySQL: 1 - -sleep(10)
    # quoting tricks: a backslash that ends a string only under some server settings
    ("mysql", "SELECT 'a\\' , SLEEP(10), \\'' FROM t", "backslash"),
    ("postgres", "SELECT 'a\\' AS x, 'b' FROM t", "backslash"),
    # placeholders and assignments
    ("postgres", "SELECT * FROM users WHERE id = $1", "placeholder"),
    ("sqlite", "SELECT * FROM users WHERE id = ?", "placeholder"),
    ("mysql", "SELECT @x := 1", "assigns"),
    # Unicode look-alikes
    ("postgres", "SELECT ｐｇ_ｓｌｅｅｐ(10)", "pg_sleep"),
    ("mysql", "SELECT s\u200bleep(10)", "sleep"),
    ("postgres", "SELECT 1；DROP TABLE users", "not valid"),
    ("postgres", "ＤＥＬＥＴＥ FROM users", "not valid"),
    # syntax errors carry a position
    ("postgres", "SELECT * FROM WHERE id = 1", "line 1, column"),
    ("sqlite", "SELECT 'unterminated", "unclosed quote"),
    ("postgres", "SELECT 1 /* unterminated comment", "unterminated /* comment"),
    ("postgres", "SELECT 1\x00", "NUL"),
]


@pytest.mark.parametrize(("dialect", "sql"), ACCEPTED)
def test_read_only_query_is_accepted(dialect: str, sql: str) -> None:
    assert check_sql(sql, dialect) == []


@pytest.mark.parametrize(("dialect", "sql", "reason"), REJECTED)
def test_unsafe_or_malformed_sql_is_rejected_with_its_reason(
    dialect: str, sql: str, reason: str
) -> None:
    problems = check_sql(sql, dialect)
    assert problems, f"{sql!r} was accepted"
    assert any(reason.lower() in p.lower() for p in problems), problems


def test_the_tables_cover_every_dialect() -> None:
    assert len(ACCEPTED) >= 20 and len(REJECTED) >= 40
    assert (
        {d for d, _ in ACCEPTED} == {d for d, _, _ in REJECTED} == {"postgres", "mysql", "sqlite"}
    )


def test_delete_in_a_cte_names_the_problem_and_the_remedy() -> None:
    problems = check_sql("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "postgres")
    assert problems == [
        "statement 1 contains DELETE inside a CTE: "
        "only read-only queries (SELECT / WITH … SELECT) can be exported"
    ]


def test_stacked_statement_is_reported_as_well_as_its_kind() -> None:
    problems = check_sql("SELECT 1; DROP TABLE x", "postgres")
    assert any("2 statements" in p for p in problems)
    assert any(p.startswith("statement 2 is a DROP statement") for p in problems)


def test_syntax_error_gives_line_and_column() -> None:
    (problem,) = check_sql("SELECT id\nFROM users\nWHERE AND id = 1", "postgres")
    assert "line 3" in problem
    assert "PostgreSQL" in problem


def test_deeply_nested_query_is_rejected_cleanly() -> None:
    sql = "SELECT " + "(" * 5000 + "1" + ")" * 5000
    (problem,) = check_sql(sql, "postgres")
    assert "nested too deeply" in problem


def test_deeply_nested_subqueries_are_rejected_cleanly() -> None:
    sql = "SELECT * FROM t WHERE a IN " + "(SELECT a FROM t WHERE a IN " * 400 + "(1)" + ")" * 400
    (problem,) = check_sql(sql, "mysql")
    assert "nested too deeply" in problem


def test_long_in_list_is_accepted() -> None:
    sql = "SELECT * FROM t WHERE id IN (" + ", ".join(str(i) for i in range(20_000)) + ")"
    assert check_sql(sql, "postgres") == []


def test_long_chain_of_operators_is_accepted() -> None:
    sql = "SELECT " + " + ".join(["a"] * 5000) + " FROM t"
    assert check_sql(sql, "sqlite") == []


def test_statement_over_the_size_limit_is_rejected_before_parsing() -> None:
    sql = "SELECT 1 -- " + "x" * MAX_STATEMENT_CHARS
    (problem,) = check_sql(sql, "postgres")
    assert "characters long" in problem


def test_many_statements_do_not_flood_the_messages() -> None:
    problems = check_sql("DELETE FROM t;" * 500, "sqlite")
    assert "500 statements" in problems[0]
    assert len(problems) <= 20


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unsupported dialect"):
        check_sql("SELECT 1", "oracle")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["postgres", "mysql", "sqlite"]))
def test_any_text_gets_an_answer_not_an_exception(text: str, dialect: str) -> None:
    problems = check_sql(text, dialect)
    assert all(isinstance(p, str) and p for p in problems)


_PIECES = "SELECT|FROM|t|(|)|;|'|\"|`|--|/*|*/|/*!|#|\n|DELETE|WITH|x|AS|1|,|pg_sleep|INTO|$$|\\"
SQLISH = st.lists(st.sampled_from([*_PIECES.split("|"), " ", "FOR UPDATE"]), max_size=40).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(SQLISH, st.sampled_from(["postgres", "mysql", "sqlite"]))
def test_sql_shaped_noise_never_crashes_and_never_passes_a_write(text: str, dialect: str) -> None:
    if check_sql(text, dialect):
        return
    tokens = Dialect.get_or_raise(dialect).tokenize(text)
    kinds = {t.token_type for t in tokens}
    assert not kinds & {TokenType.DELETE, TokenType.INSERT, TokenType.UPDATE, TokenType.INTO}
    statements, current = 0, 0
    for token in [*tokens, None]:
        if token is None or token.token_type == TokenType.SEMICOLON:
            statements += current > 0
            current = 0
        else:
            current += 1
    assert statements == 1


# -- time placeholders of scheduled queries ---------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_placeholders_where_values_stand_are_accepted(dialect: str) -> None:
    sql = (
        "SELECT * FROM orders WHERE paid_at >= {{prev_run_time}} AND paid_at < {{ run_time }} "
        "AND day = {{run_date}}"
    )
    assert check_sql(sql, dialect) == []


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
@pytest.mark.parametrize("quoted", ["'{{run_date}}'", '"{{run_date}}"', "'day {{run_date}}'"])
def test_placeholders_in_quotes_are_refused(dialect: str, quoted: str) -> None:
    problems = check_sql(f"SELECT * FROM orders WHERE day = {quoted}", dialect)
    assert any("{{run_date}} is inside quotes" in p for p in problems), problems


def test_unknown_placeholders_name_the_known_ones() -> None:
    problems = check_sql("SELECT * FROM orders WHERE day = {{yesterday}}", "postgres")
    assert problems == [
        "{{yesterday}} is not a placeholder: use {{run_date}}, {{run_time}}, "
        "{{prev_run_date}}, {{prev_run_time}}"
    ]


def test_a_placeholder_cannot_smuggle_sql() -> None:
    """A placeholder is a value: in place of a keyword or a table it does not parse."""
    assert check_sql("SELECT * FROM orders {{run_date}} DELETE FROM orders", "postgres")
