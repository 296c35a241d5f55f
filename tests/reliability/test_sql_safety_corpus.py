"""Hostile SQL, table names, field names and filters, end to end through SubmitTask on
SQLite, PostgreSQL and MariaDB: nothing writes, reads a file, sleeps past the timeout or
leaves the chosen table. Then the second wall alone: the export engine, no pre-check in
front, refuses writes and stops sleeps with its read-only transaction and timeout."""

from __future__ import annotations

import csv
import hashlib
import io
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
import sqlalchemy as sa
from fault_support import scratch_database
from service_support import Running
from sqlalchemy.engine import URL, make_url

from service.config import parse_config
from service.datasources import Datasource
from service.demo import ensure_demo_database
from service.domain.model import ExportSpec, ExportType
from service.export.engine import ExportFailed, ExportOptions, export
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

TIMEOUT_S = 2  # the datasources' statement timeout: long enough for real work, short for sleeps
WALL_S = 20  # submit → approve → run → finished, for anything that may run at all
SECRET = "TOPSECRET-7f3a"  # in victim_secret only: a table-mode export never shows it
VICTIM_COLUMNS = {"id", "name", "amount"}
PASSWD = b"root:x:0:0"  # a line of /etc/passwd: no export may contain a file's contents

DIALECTS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]

SCHEMA = [
    "CREATE TABLE victim (id INTEGER PRIMARY KEY, name VARCHAR(100), amount INTEGER)",
    "CREATE TABLE victim_secret (id INTEGER PRIMARY KEY, token VARCHAR(100))",
    "INSERT INTO victim VALUES (1, 'alpha', 10), (2, 'o''brien; --', 20), (3, NULL, 30)",
    f"INSERT INTO victim_secret VALUES (1, '{SECRET}')",
]

# -- the corpus ----------------------------------------------------------------------------

REFUSED = "refused"  # the pre-check must say no, on every dialect
RUNS = "runs"  # a legitimate query that only looks hostile: it is exported
HARMLESS = "harmless"  # refused or run (dialects differ), but the walls hold either way


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expect: str = REFUSED


DEEP = 3000
SQL_CASES = [
    # comments and quoting
    Case("stacked-drop", "SELECT * FROM victim; DROP TABLE victim"),
    Case("stacked-drop-comment", "SELECT * FROM victim;DROP TABLE victim;--"),
    Case("line-comment-then-delete", "SELECT * FROM victim -- hi\n; DELETE FROM victim"),
    Case("block-comment-semicolon", "SELECT * FROM victim /* ; */ ; DELETE FROM victim"),
    Case("quote-break-stack", "SELECT 'x'; DELETE FROM victim; --'"),
    Case("drop-inside-literal", "SELECT '; DROP TABLE victim; --' AS s", RUNS),
    Case("drop-inside-line-comment", "SELECT id FROM victim -- ; DROP TABLE victim", HARMLESS),
    Case("drop-inside-block-comment", "SELECT id FROM victim /* DROP TABLE victim */", HARMLESS),
    Case("mysql-executable-comment", "/*!50000 DROP TABLE victim*/ SELECT 1"),
    Case("mysql-executable-comment-tail", "SELECT 1 /*! ; DROP TABLE victim */"),
    Case("mariadb-executable-comment", "SELECT 1 /*M! , SLEEP(60) */"),
    Case("optimizer-hint", "SELECT /*+ MAX_EXECUTION_TIME(0) */ * FROM victim"),
    Case("backslash-quote", "SELECT 'a\\'; DROP TABLE victim; -- '"),
    Case("double-quoted-stack", 'SELECT "id" FROM "victim"; DROP TABLE "victim"'),
    Case("backtick-stack", "SELECT `id` FROM `victim`; DROP TABLE `victim`"),
    Case(
        "doubled-quote",
        "SELECT id FROM victim WHERE name = 'a'' ; DROP TABLE victim; --'",
        HARMLESS,
    ),
    Case("dollar-quote", "SELECT $$; DROP TABLE victim; $$ AS s", HARMLESS),
    Case("escape-string", "SELECT E'\\'; DROP TABLE victim; --' AS s", HARMLESS),
    Case("nul-byte", "SELECT 1\x00; DROP TABLE victim"),
    Case(
        "rtl-override-literal",
        "SELECT id FROM victim WHERE name = '\u202e; DROP TABLE victim --'",
        HARMLESS,
    ),
    Case("rtl-override-code", "SELECT id FROM victim \u202e; DROP TABLE victim"),
    Case("greek-question-mark", "SELECT id FROM victim\u037e DROP TABLE victim", HARMLESS),
    Case("fullwidth-semicolon", "SELECT 1\uff1b DROP TABLE victim", HARMLESS),
    Case("fullwidth-delete", "\uff24\uff25\uff2c\uff25\uff34\uff25 FROM victim", HARMLESS),
    Case("tautology", "SELECT * FROM victim WHERE id = 1 OR 1=1 --", HARMLESS),
    Case("char-built-statement", "SELECT CHAR(59) || 'DROP TABLE victim' AS s", HARMLESS),
    # stacked statements
    Case("two-selects", "SELECT 1; SELECT 2"),
    Case("empty-statements-then-update", "SELECT 1;\n\n;UPDATE victim SET name = 'x'"),
    Case("only-semicolons-around", ";;SELECT 1 AS one;;", HARMLESS),
    Case("transaction-block", "BEGIN; DELETE FROM victim; COMMIT"),
    Case("commit-then-delete", "COMMIT; DELETE FROM victim"),
    Case("select-commit-drop", "SELECT 1; COMMIT; DROP TABLE victim"),
    Case("thousand-statements", "SELECT 1;" * 1000),
    Case("procedural-do", "DO $$ BEGIN DELETE FROM victim; END $$"),
    # writes, DDL, session and admin statements
    Case("delete", "DELETE FROM victim"),
    Case("update", "UPDATE victim SET name = 'pwned'"),
    Case("insert", "INSERT INTO victim VALUES (99, 'x', 1)"),
    Case("insert-returning", "INSERT INTO victim VALUES (99, 'x', 1) RETURNING id"),
    Case("replace", "REPLACE INTO victim VALUES (1, 'x', 1)"),
    Case("merge", "MERGE INTO victim v USING victim s ON v.id = s.id WHEN MATCHED THEN DELETE"),
    Case("drop", "DROP TABLE victim"),
    Case("truncate", "TRUNCATE victim"),
    Case("alter", "ALTER TABLE victim ADD COLUMN z INTEGER"),
    Case("rename", "RENAME TABLE victim TO v2"),
    Case("create-as", "CREATE TABLE pwned AS SELECT * FROM victim"),
    Case("grant", "GRANT ALL ON victim TO PUBLIC"),
    Case("set-timeout", "SET statement_timeout = 0"),
    Case("set-mariadb-timeout", "SET SESSION max_statement_time = 0"),
    Case("call", "CALL p()"),
    Case("do-sleep", "DO SLEEP(60)"),
    Case("lock-table", "LOCK TABLE victim"),
    Case("lock-tables-write", "LOCK TABLES victim WRITE"),
    Case("vacuum", "VACUUM"),
    Case("vacuum-into", "VACUUM INTO '/tmp/woxqaq_corpus.db'"),
    Case("attach", "ATTACH DATABASE '/tmp/woxqaq_corpus.db' AS x"),
    Case("pragma-query-only-off", "PRAGMA query_only = OFF"),
    Case("copy-to-file", "COPY victim TO '/tmp/woxqaq_corpus.csv'"),
    Case("copy-from-program", "COPY victim FROM PROGRAM 'id'"),
    Case("load-data", "LOAD DATA INFILE '/etc/passwd' INTO TABLE victim"),
    Case("handler", "HANDLER victim OPEN"),
    Case("explain-analyze-delete", "EXPLAIN ANALYZE DELETE FROM victim"),
    Case("explain", "EXPLAIN SELECT * FROM victim"),
    Case("prepare", "PREPARE s FROM 'DELETE FROM victim'"),
    Case("execute", "EXECUTE s"),
    Case("declare-cursor", "DECLARE c CURSOR FOR SELECT 1"),
    Case("listen", "LISTEN x"),
    Case("notify", "NOTIFY x"),
    Case("show", "SHOW TABLES"),
    Case("kill", "KILL 1"),
    Case("values", "VALUES (1)"),
    # DML inside a query
    Case("cte-delete", "WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d"),
    Case(
        "cte-update", "WITH u AS (UPDATE victim SET name = 'x' RETURNING id) SELECT count(*) FROM u"
    ),
    Case(
        "cte-insert",
        "WITH i AS (INSERT INTO victim VALUES (99, 'x', 1) RETURNING id) SELECT * FROM i",
    ),
    Case("cte-then-delete", "WITH x AS (SELECT 1) DELETE FROM victim"),
    Case("subquery-delete", "SELECT * FROM (DELETE FROM victim RETURNING id) AS t"),
    Case("union-delete", "(SELECT 1) UNION ALL (DELETE FROM victim RETURNING 1)"),
    # SELECT … INTO
    Case("select-into-table", "SELECT * INTO pwned FROM victim"),
    Case("select-into-temp", "SELECT * INTO TEMP t FROM victim"),
    Case("into-outfile", "SELECT * FROM victim INTO OUTFILE '/tmp/woxqaq_corpus_out'"),
    Case(
        "into-dumpfile", "SELECT name FROM victim LIMIT 1 INTO DUMPFILE '/tmp/woxqaq_corpus_dump'"
    ),
    Case("into-variable", "SELECT id INTO @x FROM victim LIMIT 1"),
    # locking reads
    Case("for-update", "SELECT * FROM victim FOR UPDATE"),
    Case("for-share", "SELECT * FROM victim FOR SHARE"),
    Case("for-no-key-update", "SELECT * FROM victim FOR NO KEY UPDATE"),
    Case("for-update-nowait", "SELECT * FROM victim FOR UPDATE NOWAIT"),
    Case("lock-in-share-mode", "SELECT * FROM victim LOCK IN SHARE MODE"),
    # side effects: sleep, files, network, locks, sequences, settings, native code
    Case("pg-sleep", "SELECT pg_sleep(60)"),
    Case("sleep", "SELECT SLEEP(60)"),
    Case("benchmark", "SELECT BENCHMARK(10000000000, MD5('a'))"),
    Case("sleep-in-where", "SELECT * FROM victim WHERE id = (SELECT pg_sleep(60))"),
    Case("sleep-nested", "SELECT (SELECT (SELECT SLEEP(60)))"),
    Case("sleep-in-union", "SELECT 1 FROM victim UNION SELECT pg_sleep(60)"),
    Case("sleep-quoted-upper", 'SELECT "PG_SLEEP"(60)'),
    Case("sleep-schema-qualified", "SELECT pg_catalog.pg_sleep(60)"),
    Case("sleep-fullwidth", "SELECT \uff50\uff47_\uff53\uff4c\uff45\uff45\uff50(60)"),
    Case("sleep-zero-width", "SELECT pg\u200b_sleep(60)"),
    Case("sleep-cyrillic-lookalike", "SELECT \u0455leep(60)", HARMLESS),
    Case("pg-read-file", "SELECT pg_read_file('/etc/passwd')"),
    Case("pg-read-binary-file", "SELECT pg_read_binary_file('/etc/passwd')"),
    Case("pg-ls-dir", "SELECT * FROM pg_ls_dir('/')"),
    Case("load-file", "SELECT LOAD_FILE('/etc/passwd')"),
    Case("lo-import", "SELECT lo_import('/etc/passwd')"),
    Case("lo-export", "SELECT lo_export(1, '/tmp/woxqaq_corpus_lo')"),
    Case("readfile", "SELECT readfile('/etc/passwd')"),
    Case("dblink", "SELECT * FROM dblink('host=198.51.100.1', 'SELECT 1') AS t(a int)"),
    Case("nextval", "SELECT nextval('victim_seq')"),
    Case("setval", "SELECT setval('victim_seq', 100)"),
    Case("set-config", "SELECT set_config('statement_timeout', '0', false)"),
    Case("advisory-lock", "SELECT pg_advisory_lock(1)"),
    Case("get-lock", "SELECT GET_LOCK('woxqaq', 10)"),
    Case("terminate-backend", "SELECT pg_terminate_backend(pg_backend_pid())"),
    Case("reload-conf", "SELECT pg_reload_conf()"),
    Case("notify-function", "SELECT pg_notify('c', 'x')"),
    Case("txid", "SELECT txid_current()"),
    Case("query-to-xml", "SELECT query_to_xml('DELETE FROM victim', true, true, '')"),
    Case("load-extension", "SELECT load_extension('/tmp/evil')"),
    Case("xp-cmdshell", "SELECT xp_cmdshell('id')"),
    Case("sys-exec", "SELECT sys_exec('id')"),
    Case("variable-assignment", "SELECT @x := 1"),
    Case("placeholder", "SELECT * FROM victim WHERE id = ?"),
    # size and depth
    Case("very-long-sum", "SELECT " + " + ".join(["1"] * 40000) + " AS s", HARMLESS),
    Case(
        "huge-in-list",
        "SELECT id FROM victim WHERE id IN (" + ",".join(map(str, range(30000))) + ")",
        RUNS,
    ),
    Case("deep-parentheses", "SELECT " + "(" * DEEP + "1" + ")" * DEEP, HARMLESS),
    Case(
        "deep-subqueries",
        "SELECT * FROM " + "(SELECT * FROM " * 200 + "victim" + ") AS t" * 200,
        HARMLESS,
    ),
    Case("over-the-size-limit", "SELECT 1 AS a -- " + "x" * 1_000_000),
    # harmless-looking but legitimate
    Case(
        "keywords-as-data",
        "SELECT 'DELETE FROM victim' AS d, 'pg_sleep(60)' AS s, id FROM victim",
        RUNS,
    ),
    Case("trailing-comments", "SELECT id FROM victim;\n-- one\n-- two\n", HARMLESS),
    Case("other-table-in-sql-mode", "SELECT token FROM victim_secret", HARMLESS),
]

TABLE_CASES = [
    Case("stacked-drop", "victim; DROP TABLE victim"),
    Case("quote-break", 'victim"; DROP TABLE victim; --'),
    Case("quoted-comment", '"victim"--'),
    Case("backticks", "`victim`"),
    Case("backtick-break", "victim`; DROP TABLE victim; -- "),
    Case("trailing-comment", "victim --"),
    Case("inline-comment", "victim/**/"),
    Case("upper-case", "VICTIM"),
    Case("nul", "victim\x00"),
    Case("cyrillic-i", "v\u0456ctim"),
    Case("rtl-override", "victim\u202e"),
    Case("schema-qualified", "public.victim"),
    Case("path", "../victim"),
    Case("two-tables", "victim, victim_secret"),
    Case("subquery", "(SELECT * FROM victim_secret)"),
    Case("where-clause", "victim WHERE 1=1"),
    Case("union", "victim UNION SELECT * FROM victim_secret"),
    Case("catalog", "information_schema.tables"),
    Case("pg-authid", "pg_catalog.pg_authid"),
    Case("mysql-user", "mysql.user"),
    Case("sqlite-master", "sqlite_master"),
    Case("empty", ""),
    Case("overlong", "v" * 300),
    Case("surrounding-space", "  victim  ", HARMLESS),
]

FIELD_CASES = [
    Case("stacked-drop", "id; DROP TABLE victim"),
    Case("two-fields-in-one", "id, token"),
    Case("other-tables-column", "token"),
    Case("subquery", "(SELECT token FROM victim_secret)"),
    Case("quote-break", 'id"--'),
    Case("backticks", "`id`"),
    Case("star", "*"),
    Case("alias", "id AS token"),
    Case("concatenation", "name || token"),
    Case("upper-case", "ID"),
    Case("nul", "id\x00"),
    Case("cyrillic-i", "\u0456d"),
    Case("number", "1"),
    Case("aggregate", "count(*)"),
    Case("file-read", "pg_read_file('/etc/passwd')"),
    Case("sleep", "sleep(60)"),
]

FILTER_CASES = [
    Case("stacked-drop", "1=1; DROP TABLE victim"),
    Case("stacked-delete", "id = 1; DELETE FROM victim"),
    Case("line-comment", "id = 1 -- ) OR (1=1"),
    Case("block-comment", "id = 1 /* x */"),
    Case("subquery-in", "id IN (SELECT id FROM victim_secret)"),
    Case("exists", "EXISTS (SELECT 1 FROM victim_secret)"),
    Case("scalar-subquery", "name = (SELECT token FROM victim_secret LIMIT 1)"),
    Case("union", "id = 1 UNION SELECT token, 1, 1 FROM victim_secret"),
    Case("pg-sleep", "pg_sleep(60) IS NULL"),
    Case("sleep", "SLEEP(60) = 0"),
    Case("benchmark", "BENCHMARK(10000000000, MD5('a')) = 0"),
    Case("load-file", "LOAD_FILE('/etc/passwd') IS NOT NULL"),
    Case("pg-read-file", "pg_read_file('/etc/passwd') <> ''"),
    Case("for-update", "id = 1 FOR UPDATE"),
    Case("into-outfile", "id = 1 INTO OUTFILE '/tmp/woxqaq_corpus_filter'"),
    Case("variable-assignment", "id = (@x := 1)"),
    Case("positional-parameter", "id = $1"),
    Case("named-parameter", "id = :id"),
    Case("question-parameter", "id = ?"),
    # One literal or a syntax error, by dialect; bound as a parameter either way.
    Case("backslash-quote", "name = 'a\\' OR 1=1 -- '", HARMLESS),
    Case("other-tables-column", "token = 'x'"),
    Case("qualified-other-table", "victim_secret.token = 'x'"),
    Case("fullwidth-column", "\uff49\uff44 = 1"),
    Case("greek-question-mark", "id = 1\u037e DELETE FROM victim"),
    Case("mysql-executable-comment", "id = 1 /*! OR SLEEP(60) */"),
    Case("long-or-chain", " OR ".join(f"id = {i}" for i in range(2000))),
    Case("deep-parentheses", "(" * 200 + "id = 1" + ")" * 200),
    Case("tautology", "name = '' OR '' = ''", HARMLESS),
    Case("like-everything", "name LIKE '%'", HARMLESS),
    Case("quote-in-literal", "name = 'o''brien; --'", RUNS),
    Case("allowed-functions", "lower(name) = 'alpha' AND amount BETWEEN 1 AND 100", RUNS),
]


def corpus(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.name) for c in cases]


def test_corpus_is_large_enough() -> None:
    assert len(SQL_CASES) + len(TABLE_CASES) + len(FIELD_CASES) + len(FILTER_CASES) >= 100


# -- datasources with a victim ------------------------------------------------------------


@dataclass
class Target:
    dialect: str
    url: URL
    engine: sa.Engine
    svc: Running

    def snapshot(self) -> tuple[Any, ...]:
        """What a write or a leaked lock would change: tables, rows, sequence, locks."""
        with self.engine.connect() as conn:
            q = conn.exec_driver_sql
            if self.dialect == "sqlite":
                tables = q("SELECT name FROM sqlite_master ORDER BY name").all()
                extra: Any = q("PRAGMA user_version").all()
            elif self.dialect == "postgres":
                tables = q(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
                ).all()
                extra = (
                    q("SELECT last_value, is_called FROM victim_seq").all(),
                    q("SELECT count(*) FROM pg_largeobject_metadata").all(),
                    # this database's: other test sessions share the server
                    q(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    ).all(),
                )
            else:
                tables = q(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() ORDER BY 1"
                ).all()
                extra = q("SELECT IS_FREE_LOCK('woxqaq')").all()
            rows = [q(f"SELECT * FROM {t} ORDER BY id").all() for t in ("victim", "victim_secret")]
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()
        return tuple(tables), digest, repr(extra)


def _victim_url(dialect: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[URL]:
    if dialect == "sqlite":
        path = tmp / "shop.db"
        ensure_demo_database(path)  # the demo's tables, and the victims beside them
        conn = sqlite3.connect(path)
        conn.executescript(";\n".join(SCHEMA))
        conn.commit()
        conn.close()
        yield make_url(f"sqlite:///{path}")
        return
    base = request.getfixturevalue("pg_url" if dialect == "postgres" else "mysql_url")
    for url in scratch_database(base, "corpus"):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for statement in SCHEMA:
                conn.exec_driver_sql(statement)
            if dialect == "postgres":
                conn.exec_driver_sql("CREATE SEQUENCE victim_seq")
        engine.dispose()
        yield url


@pytest.fixture(scope="module", params=DIALECTS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    dialect = request.param
    tmp = tmp_path_factory.mktemp(f"corpus-{dialect}")
    for url in _victim_url(dialect, request, tmp):
        cfg = parse_config(
            {
                "server": {"data_dir": str(tmp / "data")},
                "storage": {"local": {"http_listen": "127.0.0.1:0"}},
                "task_store": {"url": f"sqlite:///{tmp / 'tasks.db'}"},
                "datasources": {
                    "victim": {
                        "url": url.render_as_string(hide_password=False),
                        "approvers": ["alice"],
                        "statement_timeout_s": TIMEOUT_S,
                        # a superuser: the walls are shown to hold without the reader audit
                        "allow_privileged_reader": True,
                    }
                },
            }
        )
        service = Service(cfg, listen="127.0.0.1:0")
        port = service.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            yield Target(dialect, url, engine, Running(service, cfg, channel, f"127.0.0.1:{port}"))
        finally:
            channel.close()
            service.stop(grace_s=5)
            engine.dispose()


# -- end to end ---------------------------------------------------------------------------


@dataclass
class Outcome:
    refused: bool  # by the pre-check (or as a malformed request)
    messages: list[str]
    run_status: int = 0
    run_error: str = ""
    data: bytes = b""
    seconds: float = 0.0


FINAL = {pb.TASK_STATUS_EXECUTE_SUCCESS, pb.TASK_STATUS_EXECUTE_FAILED}


def submit_and_run(target: Target, **what: Any) -> Outcome:
    """Submit as mallory; if the pre-check passes, alice approves, the export runs (auto),
    and the file is downloaded."""
    svc = target.svc
    started = time.monotonic()
    try:
        resp = svc.submit("mallory", dsn="victim", **what)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
        return Outcome(True, [exc.details()], seconds=time.monotonic() - started)
    detail = svc.detail(resp.task_id, "mallory")
    if not resp.ok:
        assert detail.task.status == pb.TASK_STATUS_PRE_CHECK_FAILED
        return Outcome(True, list(detail.precheck_messages), seconds=time.monotonic() - started)
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    while detail.task.status not in FINAL:
        assert time.monotonic() - started < WALL_S, f"still {detail.task.status} after {WALL_S} s"
        time.sleep(0.05)
        detail = svc.detail(resp.task_id, "mallory")
    run = detail.runs[0]
    out = Outcome(False, [], run.status, run.error)
    if run.status == pb.TASK_STATUS_EXECUTE_SUCCESS:
        link = svc.as_user("mallory").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=resp.task_id))
        out.data = requests.get(link.url, timeout=10).content
    out.seconds = time.monotonic() - started
    return out


def check_walls(target: Target, before: tuple[Any, ...], out: Outcome, case: Case) -> None:
    assert target.snapshot() == before, "the datasource changed"
    assert out.seconds < WALL_S
    assert PASSWD not in out.data
    if case.expect == REFUSED:
        assert out.refused, f"the pre-check let through {case.text[:200]!r}"
        assert out.messages and all(m.strip() for m in out.messages)
    elif case.expect == RUNS:
        assert not out.refused, out.messages
        assert out.run_status == pb.TASK_STATUS_EXECUTE_SUCCESS, out.run_error
    if out.run_status == pb.TASK_STATUS_EXECUTE_FAILED:
        assert out.run_error.strip() and "\n" not in out.run_error


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("case", corpus(SQL_CASES))
def test_hostile_sql_never_writes_reads_files_or_sleeps(target: Target, case: Case) -> None:
    before = target.snapshot()
    out = submit_and_run(target, sql=case.text)
    check_walls(target, before, out, case)
    if case.name == "keywords-as-data":
        assert csv_rows(out.data)[1][:2] == ["DELETE FROM victim", "pg_sleep(60)"]


def check_table_export(out: Outcome) -> None:
    """A table-mode export shows the chosen table's own columns and nothing else."""
    if out.data:
        rows = csv_rows(out.data)
        assert set(rows[0]) <= VICTIM_COLUMNS, rows[0]
        assert SECRET.encode() not in out.data


@pytest.mark.parametrize("case", corpus(TABLE_CASES))
def test_hostile_table_names_never_reach_sql(target: Target, case: Case) -> None:
    before = target.snapshot()
    out = submit_and_run(target, tables=[{"table": case.text, "all_field": True}])
    check_walls(target, before, out, case)
    check_table_export(out)


@pytest.mark.parametrize("case", corpus(FIELD_CASES))
def test_hostile_field_names_never_reach_sql(target: Target, case: Case) -> None:
    before = target.snapshot()
    out = submit_and_run(target, tables=[{"table": "victim", "fields": ["id", case.text]}])
    check_walls(target, before, out, case)
    check_table_export(out)


@pytest.mark.parametrize("case", corpus(FILTER_CASES))
def test_hostile_filters_are_parsed_never_pasted(target: Target, case: Case) -> None:
    before = target.snapshot()
    out = submit_and_run(
        target, tables=[{"table": "victim", "all_field": True, "filter": case.text}]
    )
    check_walls(target, before, out, case)
    check_table_export(out)
    if case.name in ("backslash-quote", "tautology") and out.data:
        assert len(csv_rows(out.data)) == (1 if case.name == "backslash-quote" else 4)
    if case.name == "quote-in-literal":
        assert [r[0] for r in csv_rows(out.data)[1:]] == ["2"]


# -- the second wall on its own -----------------------------------------------------------

# Statements the pre-check refuses, given to the export engine directly: the read-only
# transaction (and, on MariaDB, the query check before it) must refuse them all.
WRITES = {
    "sqlite": [
        "UPDATE victim SET name = 'x'",
        "DELETE FROM victim RETURNING id",
        "INSERT INTO victim VALUES (99, 'x', 1) RETURNING id",
        "CREATE TABLE pwned (a INTEGER)",
        "CREATE TEMP TABLE pwned (a INTEGER)",
        "DROP TABLE victim",
        "PRAGMA user_version = 5",
        "PRAGMA query_only = OFF",
        "BEGIN IMMEDIATE",
        "ATTACH DATABASE '{scratch}/attached.db' AS x",
        "ATTACH DATABASE 'file:{scratch}/attached-rwc.db?mode=rwc' AS x",
        "VACUUM INTO '{scratch}/copy.db'",
    ],
    "postgres": [
        "UPDATE victim SET name = 'x' RETURNING id",
        "DELETE FROM victim RETURNING id",
        "INSERT INTO victim VALUES (99, 'x', 1) RETURNING id",
        "WITH d AS (DELETE FROM victim RETURNING id) SELECT * FROM d",
        "CREATE TABLE pwned (a int)",
        "DROP TABLE victim",
        "SELECT * INTO pwned FROM victim",
        "SELECT * FROM victim FOR UPDATE",
        "SELECT nextval('victim_seq')",
        "SELECT setval('victim_seq', 100)",
        "COPY victim TO STDOUT",
    ],
    "mysql": [
        "UPDATE victim SET name = 'x'",
        "DELETE FROM victim",
        "INSERT INTO victim VALUES (99, 'x', 1)",
        "REPLACE INTO victim VALUES (1, 'x', 1)",
        # DDL commits the transaction implicitly: it must never reach the server as a statement
        "CREATE TABLE pwned (a int)",
        "CREATE TEMPORARY TABLE pwned (a int)",
        "DROP TABLE victim",
        "TRUNCATE TABLE victim",
        "ALTER TABLE victim ADD COLUMN z int",
        "RENAME TABLE victim TO v2",
        "COMMIT",
        "SET SESSION max_statement_time = 0",
        "DO SLEEP(1)",
        "LOCK TABLES victim WRITE",
        "SELECT * FROM victim FOR UPDATE",
        "SELECT * FROM victim INTO OUTFILE '/tmp/woxqaq_wall_{token}'",
        "SELECT name FROM victim LIMIT 1 INTO DUMPFILE '/tmp/woxqaq_wall_{token}'",
        "SELECT id INTO @x FROM victim LIMIT 1",
    ],
}
# Session state is not a write: it may be set, but never outlives the export on the pooled
# connection the next export (or anything else sharing the pool) gets.
SESSION_STATE = {
    "sqlite": [],
    "postgres": [
        "SELECT pg_advisory_lock(4242)",
        "SELECT pg_advisory_lock_shared(4243)",
        "SELECT set_config('statement_timeout', '1', false)",
    ],
    "mysql": ["SELECT GET_LOCK('woxqaq', 0)"],
}
SESSION_PROBE = {
    "postgres": "SELECT current_setting('statement_timeout'), "
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')",
    "mysql": "SELECT IS_FREE_LOCK('woxqaq'), IS_USED_LOCK('woxqaq')",
}
SLEEPS = {
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
    "postgres": "SELECT pg_sleep(60)",
    "mysql": "SELECT SLEEP(60)",
}


def direct_export(
    target: Target, work: Path, statement: str, engine: sa.Engine | None = None
) -> Any:
    own = engine is None
    engine = engine or sa.create_engine(target.url)
    try:
        return export(
            ExportSpec(statement=statement),
            Datasource("victim", target.url),
            engine,
            work_dir=work,
            basename="wall",
            options=ExportOptions(statement_timeout_s=5),
        )
    finally:
        if own:
            engine.dispose()


def test_export_engine_alone_refuses_every_write(target: Target, tmp_path: Path) -> None:
    work = tmp_path / "out"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = target.snapshot()
    for template in WRITES[target.dialect]:
        statement = template.format(scratch=scratch, token=tmp_path.name)
        with pytest.raises(ExportFailed) as info:
            direct_export(target, work, statement)
        message = str(info.value)
        assert message.strip() and "\n" not in message, statement
        assert target.snapshot() == before, f"{statement!r} changed the datasource"
        assert not any(work.iterdir()), f"{statement!r} left a file behind"
    assert not any(scratch.iterdir()), "a statement created a file"


def test_export_engine_leaves_no_session_state_in_the_pool(target: Target, tmp_path: Path) -> None:
    if not SESSION_STATE[target.dialect]:
        pytest.skip("SQLite exports open a connection of their own each time")
    engine = sa.create_engine(target.url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            clean = conn.exec_driver_sql(SESSION_PROBE[target.dialect]).one()
        for statement in SESSION_STATE[target.dialect]:
            direct_export(target, tmp_path, statement, engine)
            with engine.connect() as conn:  # the one pooled connection the export used
                assert conn.exec_driver_sql(SESSION_PROBE[target.dialect]).one() == clean, (
                    f"{statement!r} outlived its export"
                )
    finally:
        engine.dispose()


def test_export_engine_alone_stops_a_sleep_at_the_timeout(target: Target, tmp_path: Path) -> None:
    for kind in (ExportType.CSV, ExportType.EXCEL):
        started = time.monotonic()
        with pytest.raises(ExportFailed, match="statement timeout of 1 s"):
            export(
                ExportSpec(statement=SLEEPS[target.dialect], type=kind),
                Datasource("victim", target.url),
                target.engine,
                work_dir=tmp_path,
                basename="sleep",
                options=ExportOptions(statement_timeout_s=1),
            )
        assert time.monotonic() - started < 5
    assert not any(tmp_path.iterdir())
