"""Read-only walls that rest on what the database says, on real PostgreSQL and MariaDB.

Hostile spellings (Unicode-escaped and quoted names, schema-qualified calls, functions and
operators created in the database, stored functions) go through SubmitTask to a datasource
that connects as the server's superuser with `allow_privileged_reader = true`, so the
reader audit does not help: each is refused by the pre-check, or runs and is shown to
change nothing — table checksums, sequences, a bystander session, files on the server.
Legitimate queries written for each server are accepted and exported as written.
"""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
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
from sqlalchemy.engine import URL

from service.config import parse_config
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

TIMEOUT_S = 3
MARK = uuid.uuid4().hex[:8]
# The database servers run on this machine: a file one writes appears here.
FILES = Path(tempfile.gettempdir())
OUT_FILE = FILES / f"woxqaq_walls_{MARK}"
DONE = {pb.TASK_STATUS_EXECUTE_SUCCESS, pb.TASK_STATUS_EXECUTE_FAILED}

PG_SETUP = [
    "CREATE EXTENSION IF NOT EXISTS dblink",
    "CREATE TABLE walls_victim (id int PRIMARY KEY, v int NOT NULL, note text)",
    "INSERT INTO walls_victim VALUES (1, 0, 'alpha'), (2, 0, 'beta'), (3, 5, NULL)",
    "CREATE TABLE walls_tree (id int PRIMARY KEY, parent int, doc jsonb)",
    'INSERT INTO walls_tree VALUES (1, NULL, \'{"k": 1, "tags": ["a"]}\'), '
    '(2, 1, \'{"k": 2}\'), (3, 2, \'{"k": 3, "tags": ["b", "c"]}\')',
    "CREATE SEQUENCE walls_seq",
    "CREATE SCHEMA walls_s",
    # writes, however innocently it is named, declared or reached
    "CREATE FUNCTION walls_bump() RETURNS int LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE walls_victim SET v = v + 1; RETURN 1; END $$",
    "CREATE FUNCTION walls_liar() RETURNS bigint IMMUTABLE LANGUAGE plpgsql AS "
    "$$ BEGIN RETURN nextval('walls_seq'); END $$",
    "CREATE FUNCTION walls_s.lower(text) RETURNS text LANGUAGE sql AS "
    "$$ UPDATE walls_victim SET v = v + 1 RETURNING 'x' $$",
    # a better match than pg_catalog.initcap(text) for a varchar argument
    "CREATE FUNCTION public.initcap(varchar) RETURNS text LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE walls_victim SET v = v + 1; RETURN 'x'; END $$",
    "CREATE FUNCTION walls_op(int, int) RETURNS int LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM nextval('walls_seq'); RETURN 1; END $$",
    "CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = walls_op)",
    # pure, and allowed by name in the datasource's allowed_functions
    "CREATE FUNCTION walls_double(int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT $1 * 2 $$",
]

MYSQL_SETUP = [
    "CREATE TABLE walls_victim (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
    "INSERT INTO walls_victim VALUES (1, 0, 'alpha'), (2, 0, 'beta'), (3, 5, NULL)",
    "CREATE TABLE walls_other (id INT PRIMARY KEY, victim_id INT, amount DECIMAL(8,2))",
    "INSERT INTO walls_other VALUES (1, 1, 9.50), (2, 1, 0.25), (3, 2, 100.00)",
    "CREATE SEQUENCE walls_seq",
    "CREATE FUNCTION walls_bump() RETURNS INT MODIFIES SQL DATA "
    "BEGIN UPDATE walls_victim SET v = v + 1; RETURN 1; END",
    "CREATE FUNCTION lower(x VARCHAR(20)) RETURNS INT MODIFIES SQL DATA "
    "BEGIN UPDATE walls_victim SET v = v + 1; RETURN 1; END",
    "CREATE FUNCTION walls_double(x INT) RETURNS INT DETERMINISTIC NO SQL RETURN x * 2",
    "CREATE FUNCTION $walls() RETURNS INT MODIFIES SQL DATA "
    "BEGIN UPDATE walls_victim SET v = v + 1; RETURN 1; END",
    "CREATE FUNCTION 9walls() RETURNS INT MODIFIES SQL DATA "
    "BEGIN UPDATE walls_victim SET v = v + 1; RETURN 1; END",
]

REFUSED = "refused"
HARMLESS = "harmless"  # refused, or runs and changes nothing


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # {dsn} {pid} {file} {db} are filled in from the live datasource
    expect: str = REFUSED


DBLINK = "'{dsn}', 'UPDATE walls_victim SET v = 99'"
PG_HOSTILE = [
    # Unicode escapes, as the server decodes them
    Case("u-dblink-exec", 'SELECT U&"\\0064blink_exec"(' + DBLINK + ")"),
    Case("u-terminate", 'SELECT U&"pg\\005fterminate\\005fbackend"({pid})'),
    Case("u-lo-export", "SELECT U&\"lo\\005fexport\"(16400, '{file}')"),
    Case("u-read-file", "SELECT U&\"pg\\005fread\\005ffile\"('/etc/passwd')"),
    Case("u-uescape-dblink", "SELECT U&\"d!0062link_exec\" UESCAPE '!' (" + DBLINK + ")"),
    Case("u-uescape-read", "SELECT U&\"pg!005fread!005ffile\" UESCAPE '!' ('/etc/passwd')"),
    Case("u-six-digit", 'SELECT U&"pg\\+00005fsleep"(5)'),
    Case("u-all-escaped", 'SELECT U&"\\0070\\0067\\005f\\0073\\006c\\0065\\0065\\0070"(5)'),
    Case("u-set-config", "SELECT U&\"set\\005fconfig\"('statement_timeout', '0', false)"),
    Case("u-advisory", 'SELECT U&"pg\\005fadvisory\\005flock"(42)'),
    Case("u-nextval", "SELECT U&\"next\\0076al\"('walls_seq')"),
    Case("u-schema-and-name", 'SELECT U&"pg\\005fcatalog".U&"pg\\005fsleep"(5)'),
    Case("u-user-function", 'SELECT U&"walls\\005fbump"()'),
    # quoted and qualified spellings
    Case("quoted-dblink", 'SELECT "dblink_exec"(' + DBLINK + ")"),
    Case("quoted-qualified-dblink", 'SELECT "public"."dblink_exec"(' + DBLINK + ")"),
    Case("dblink-in-from", "SELECT * FROM public.dblink(" + DBLINK + ") AS t(x text)"),
    Case("qualified-read-file", "SELECT pg_catalog.pg_read_file('/etc/passwd')"),
    Case("upper-case-read-file", "SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')"),
    Case("quoted-ls-dir", 'SELECT "pg_catalog"."pg_ls_dir"(\'.\')'),
    Case("quoted-upper-sleep", 'SELECT "PG_SLEEP"(5)'),
    Case("quoted-setval", "SELECT \"setval\"('walls_seq', 100)"),
    # functions judged by the catalog
    Case("user-plpgsql", "SELECT walls_bump()"),
    Case("user-qualified", "SELECT public.walls_bump()"),
    Case("user-immutable-liar", "SELECT walls_liar()"),
    Case("user-schema-innocent-name", "SELECT walls_s.lower('a')"),
    Case("user-quoted-schema", "SELECT \"walls_s\".lower('a')"),
    Case("shadowed-builtin", "SELECT initcap('a'::varchar)"),
    Case("user-operator", "SELECT 1 ### 2"),
    Case("user-operator-qualified", "SELECT 1 OPERATOR(public.###) 2"),
    Case("volatile-builtin-currtid", "SELECT currtid2('walls_victim', '(0,1)'::tid)"),
    Case("volatile-builtin-stats", "SELECT pg_stat_clear_snapshot()"),
    Case("volatile-builtin-reset", "SELECT pg_stat_reset_single_table_counters(1)"),
    Case("unknown-function", "SELECT walls_nothing_here(1)"),
    # the same calls wherever they hide in a query
    Case("in-scalar-subquery", "SELECT (SELECT walls_bump())"),
    Case("in-cte", "WITH x AS (SELECT walls_bump()) SELECT * FROM x"),
    Case("in-where", "SELECT * FROM walls_victim WHERE v = walls_bump()"),
    Case("in-from", "SELECT * FROM walls_bump()"),
    Case("in-rows-from", "SELECT * FROM ROWS FROM (walls_bump())"),
    Case("in-order-by", "SELECT id FROM walls_victim ORDER BY walls_bump()"),
    Case("in-filter", "SELECT count(*) FILTER (WHERE walls_bump() = 1) FROM walls_victim"),
    Case("in-lateral", "SELECT * FROM walls_victim, LATERAL (SELECT walls_bump()) x"),
    Case("in-default-arg-cast", "SELECT CAST(walls_bump() AS text)"),
    # injection cheat-sheet moves (file reads, error-based leaks, SQL run from text),
    # respelled so that a list of names would miss them
    Case("u-lo-import", "SELECT U&\"lo\\005fimport\"('/etc/passwd')"),
    Case("u-lo-import-read-back", "SELECT lo_get(U&\"lo\\005fimport\"('/etc/passwd'))"),
    Case("u-ls-dir-in-from", "SELECT * FROM U&\"pg\\005fls\\005fdir\"('/tmp')"),
    Case(
        "u-error-based-read",
        "SELECT CAST(U&\"pg\\005fread\\005ffile\"('/etc/passwd', 0, 4096) AS numeric)",
    ),
    Case(
        "u-sql-from-text",
        "SELECT U&\"query\\005fto\\005fxml\"('UPDATE walls_victim SET v = 7 RETURNING 1', "
        "true, true, '')",
    ),
    Case(
        "u-binary-read", "SELECT pg_catalog.U&\"pg\\005fread\\005fbinary\\005ffile\"('/etc/passwd')"
    ),
]

MYSQL_HOSTILE = [
    Case("stored", "SELECT walls_bump()"),
    Case("stored-backticks", "SELECT `walls_bump`()"),
    Case("stored-qualified", "SELECT {db}.walls_bump()"),
    Case("stored-qualified-backticks", "SELECT `{db}`.`walls_bump`()"),
    Case("stored-spaced", "SELECT {db} . walls_bump ()"),
    Case("stored-upper", "SELECT WALLS_BUMP()"),
    Case("stored-dollar-name", "SELECT $walls()"),
    Case("stored-digit-first-name", "SELECT 9walls()"),
    Case("stored-shadowing-builtin-quoted", "SELECT `lower`('A')"),
    Case("stored-shadowing-builtin-qualified", "SELECT {db}.lower('A')"),
    Case("stored-in-where", "SELECT * FROM walls_victim WHERE v = walls_bump()"),
    Case("stored-in-subquery", "SELECT (SELECT walls_bump())"),
    Case("stored-in-in-list", "SELECT id FROM walls_victim WHERE id IN (SELECT walls_bump())"),
    Case("stored-in-order-by", "SELECT id FROM walls_victim ORDER BY walls_bump()"),
    Case("stored-from-dual", "SELECT walls_bump() FROM DUAL"),
    Case("nextval", "SELECT NEXTVAL(walls_seq)"),
    Case("setval", "SELECT SETVAL(walls_seq, 100)"),
    Case("lastval", "SELECT LASTVAL(walls_seq)"),
    Case("next-value-for", "SELECT NEXT VALUE FOR walls_seq", HARMLESS),
    Case("udf-sys-exec", "SELECT sys_exec('id')"),
    Case("quoted-sleep", "SELECT `sleep`(5)"),
    Case("comment-split-sleep", "SELECT SLEEP/**/(5)"),
    Case("benchmark", "SELECT BENCHMARK(100000000, MD5('a'))"),
    Case("get-lock", "SELECT GET_LOCK('walls', 0)"),
    Case("load-file", "SELECT LOAD_FILE('/etc/passwd')"),
    Case("quoted-load-file", "SELECT `load_file`('/etc/passwd')"),
    Case("into-outfile", "SELECT * FROM walls_victim INTO OUTFILE '{file}'"),
    Case("into-dumpfile", "SELECT note FROM walls_victim LIMIT 1 INTO DUMPFILE '{file}'"),
    Case("last-insert-id", "SELECT LAST_INSERT_ID(5)"),
    Case("release-all-locks", "SELECT RELEASE_ALL_LOCKS()"),
    Case("unknown-function", "SELECT walls_nothing_here(1)"),
    Case("updatexml", "SELECT UPDATEXML('<a/>', '/a', '<b/>')"),
    # injection cheat-sheet moves
    Case("load-file-hex-path", "SELECT LOAD_FILE(0x2f6574632f706173737764)"),
    Case("conditional-benchmark", "SELECT IF(1 = 1, BENCHMARK(100000000, SHA1('a')), 0)"),
    Case("error-based-leak", "SELECT EXTRACTVALUE(1, CONCAT(0x7e, VERSION()))", HARMLESS),
    Case(
        "stored-in-json-table-path",
        "SELECT * FROM JSON_TABLE(CONCAT('[', walls_bump(), ']'), "
        "'$[*]' COLUMNS (x INT PATH '$')) AS j",
    ),
]


@dataclass(frozen=True)
class Legit:
    name: str
    text: str


PG_LEGIT = [
    Legit("window-rank", "SELECT id, v, rank() OVER (ORDER BY v DESC, id) FROM walls_victim"),
    Legit("window-frame", "SELECT id, sum(v) OVER (ORDER BY id ROWS 1 PRECEDING) FROM walls_victim"),
    Legit(
        "lateral",
        "SELECT t.id, x.n FROM walls_tree t, LATERAL (SELECT t.id * 2 AS n) x ORDER BY 1",
    ),
    Legit("json-arrow", "SELECT id, doc->>'k' AS k, doc->'tags' AS tags FROM walls_tree"),
    Legit("jsonb-contains", "SELECT id FROM walls_tree WHERE doc @> '{\"k\": 3}'"),
    Legit(
        "jsonb-elements",
        "SELECT t.id, e FROM walls_tree t, jsonb_array_elements_text(t.doc->'tags') e",
    ),
    Legit(
        "recursive-cte",
        "WITH RECURSIVE up(id, depth) AS (SELECT id, 0 FROM walls_tree WHERE parent IS NULL "
        "UNION ALL SELECT t.id, up.depth + 1 FROM walls_tree t JOIN up ON t.parent = up.id) "
        "SELECT * FROM up",
    ),
    Legit("delete-in-string", "SELECT 'DELETE FROM walls_victim; DROP TABLE x' AS s"),
    Legit("semicolon-in-comment", "SELECT id FROM walls_victim -- ; DELETE FROM walls_victim"),
    Legit("semicolon-in-dollar", "SELECT $$;$$ || note AS s FROM walls_victim"),
    Legit("volatile-allowed", "SELECT id, random() < 2 AS r, gen_random_uuid() IS NOT NULL FROM walls_victim"),
    Legit("allowed-user-function", "SELECT walls_double(v) FROM walls_victim"),
    Legit("unicode-name-of-column", 'SELECT U&"\\006eote" FROM walls_victim'),
    Legit("aggregates", "SELECT count(*), string_agg(note, ',' ORDER BY id), max(v) FROM walls_victim"),
    Legit("generate-series", "SELECT g, to_char(DATE '2024-01-01' + g, 'YYYY-MM-DD') FROM generate_series(0, 9) g"),
    Legit("operators", "SELECT id FROM walls_victim WHERE note ILIKE 'a%' OR v + 1 > 5"),
    Legit("qualified-builtin", "SELECT pg_catalog.upper(note), pg_catalog.now() IS NOT NULL FROM walls_victim"),
    Legit("coalesce-case", "SELECT COALESCE(note, '-'), CASE WHEN v > 0 THEN 'y' ELSE 'n' END FROM walls_victim"),
]  # fmt: skip

MYSQL_LEGIT = [
    Legit("straight-join", "SELECT STRAIGHT_JOIN v.id, o.amount FROM walls_victim v JOIN walls_other o ON o.victim_id = v.id"),
    Legit("high-priority", "SELECT HIGH_PRIORITY id, note FROM walls_victim"),
    Legit("sql-no-cache", "SELECT SQL_NO_CACHE id FROM walls_victim"),
    Legit("calc-found-rows", "SELECT SQL_CALC_FOUND_ROWS id FROM walls_victim LIMIT 2"),
    Legit("options-together", "SELECT DISTINCT HIGH_PRIORITY STRAIGHT_JOIN SQL_BUFFER_RESULT v.id FROM walls_victim v"),
    Legit("backticks", "SELECT `v`.`id`, `v`.`note` FROM `walls_victim` AS `v`"),
    Legit("window", "SELECT id, ROW_NUMBER() OVER (ORDER BY v DESC, id) AS n FROM walls_victim"),
    Legit("recursive-cte", "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n"),
    Legit("json", "SELECT JSON_EXTRACT('{\"a\": [1, 2]}', '$.a[1]') AS x, JSON_OBJECT('id', id) FROM walls_victim"),
    Legit("delete-in-string", "SELECT 'DELETE FROM walls_victim; --' AS s"),
    Legit("semicolon-in-comment", "SELECT id FROM walls_victim /* ; DROP TABLE x */"),
    Legit("date-functions", "SELECT DATE_FORMAT(NOW(), '%Y') IS NOT NULL, DATEDIFF('2024-03-01', '2024-02-01')"),
    Legit("group-concat", "SELECT victim_id, GROUP_CONCAT(amount ORDER BY id SEPARATOR '|') FROM walls_other GROUP BY victim_id"),
    Legit("allowed-stored-function", "SELECT walls_double(v) FROM walls_victim"),
    Legit("cast-types", "SELECT CAST(amount AS DECIMAL(10,3)), CAST(id AS CHAR(4)) FROM walls_other"),
]  # fmt: skip


def test_the_corpus_is_large_enough() -> None:
    assert len(PG_HOSTILE) + len(MYSQL_HOSTILE) >= 40
    assert len(PG_LEGIT) + len(MYSQL_LEGIT) >= 30


# -- the datasources -------------------------------------------------------------------------


@dataclass
class Walls:
    dialect: str
    url: URL
    engine: sa.Engine
    bystander: sa.Connection
    svc: Running

    @property
    def bystander_id(self) -> int:
        q = "SELECT pg_backend_pid()" if self.dialect == "postgres" else "SELECT CONNECTION_ID()"
        return int(self.bystander.exec_driver_sql(q).scalar_one())

    def fill(self, text: str) -> str:
        dsn = (
            f"host=127.0.0.1 port={self.url.port or 5432} user={self.url.username} "
            f"dbname={self.url.database}"
        )
        return text.format(dsn=dsn, pid=self._pid, file=OUT_FILE, db=self.url.database)

    def snapshot(self) -> tuple[Any, ...]:
        """What a write would change: rows, the sequence, the bystander, files."""
        with self.engine.connect() as conn:
            q = conn.exec_driver_sql
            rows = q("SELECT id, v, note FROM walls_victim ORDER BY id").all()
            if self.dialect == "postgres":
                seq = q("SELECT last_value, is_called FROM walls_seq").all()
                objects = q("SELECT count(*) FROM pg_largeobject_metadata").scalar_one()
                activity = "pg_stat_activity WHERE pid"
            else:
                seq = q("SELECT next_not_cached_value FROM walls_seq").all()
                objects = 0
                activity = "information_schema.PROCESSLIST WHERE ID"
            alive = q(f"SELECT count(*) FROM {activity} = {self._pid}").scalar_one()
        self.bystander.exec_driver_sql("SELECT 1")  # still usable, not only listed
        self.bystander.rollback()
        return rows, seq, objects, alive, OUT_FILE.exists()

    _pid: int = 0


def _walls(
    dialect: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walls]:
    base = request.getfixturevalue("pg_url" if dialect == "postgres" else "mysql_url")
    tmp = tmp_path_factory.mktemp(f"walls-{dialect}")
    for url in scratch_database(base, "walls"):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for statement in PG_SETUP if dialect == "postgres" else MYSQL_SETUP:
                conn.exec_driver_sql(statement)
        cfg = parse_config(
            {
                "server": {"data_dir": str(tmp / "data")},
                "storage": {"local": {"http_listen": "127.0.0.1:0"}},
                "task_store": {"url": f"sqlite:///{tmp / 'tasks.db'}"},
                "scheduler": {"enabled": False},
                "datasources": {
                    "victim": {
                        "url": url.render_as_string(hide_password=False),
                        "approvers": ["alice"],
                        "statement_timeout_s": TIMEOUT_S,
                        "allowed_functions": ["walls_double"],
                        # the superuser: the audit would refuse it, the walls must hold alone
                        "allow_privileged_reader": True,
                    }
                },
            }
        )
        service = Service(cfg, listen="127.0.0.1:0")
        port = service.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        bystander = engine.connect()
        try:
            w = Walls(dialect, url, engine, bystander, Running(service, cfg, channel, ""))
            w._pid = w.bystander_id
            bystander.rollback()
            yield w
        finally:
            bystander.close()
            channel.close()
            service.stop(grace_s=1)
            engine.dispose()
            OUT_FILE.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def pg_walls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walls]:
    yield from _walls("postgres", request, tmp_path_factory)


@pytest.fixture(scope="module")
def mysql_walls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walls]:
    yield from _walls("mysql", request, tmp_path_factory)


@dataclass
class Outcome:
    refused: bool
    messages: list[str]
    detail: pb.GetTaskDetailResponse | None = None
    data: bytes = b""


def submit_and_run(w: Walls, sql: str) -> Outcome:
    resp = w.svc.submit("mallory", dsn="victim", sql=sql)
    detail = w.svc.detail(resp.task_id)
    if not resp.ok:
        return Outcome(True, list(detail.precheck_messages), detail)
    w.svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    detail = w.svc.wait_for_status(resp.task_id, DONE, timeout=30)
    data = b""
    if detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS:
        link = w.svc.as_user("mallory").GetDownloadUrl(
            pb.GetDownloadUrlRequest(task_id=resp.task_id)
        )
        data = requests.get(link.url, timeout=10).content
    return Outcome(False, [], detail, data)


# -- hostile ---------------------------------------------------------------------------------


def check_hostile(w: Walls, case: Case) -> None:
    before = w.snapshot()
    out = submit_and_run(w, w.fill(case.text))
    assert w.snapshot() == before, "the datasource, its sessions or its files changed"
    if case.expect == REFUSED:
        assert out.refused, f"{case.name} passed the pre-check"
        assert out.messages and all("Traceback" not in m for m in out.messages)
    assert b"root:x:0:0" not in out.data


@pytest.mark.postgres
@pytest.mark.parametrize("case", PG_HOSTILE, ids=lambda c: c.name)
def test_hostile_postgres_spelling_is_refused(pg_walls: Walls, case: Case) -> None:
    check_hostile(pg_walls, case)


@pytest.mark.mysql
@pytest.mark.parametrize("case", MYSQL_HOSTILE, ids=lambda c: c.name)
def test_hostile_mariadb_spelling_is_refused_or_changes_nothing(
    mysql_walls: Walls, case: Case
) -> None:
    check_hostile(mysql_walls, case)


# -- legitimate ------------------------------------------------------------------------------


def check_exported_as_written(w: Walls, case: Legit) -> pb.GetTaskDetailResponse:
    cur = w.bystander.connection.driver_connection.cursor()  # the text as is: no paramstyle
    cur.execute(case.text)
    expected = cur.fetchall()
    cur.close()
    w.bystander.rollback()
    out = submit_and_run(w, case.text)
    assert not out.refused, out.messages
    assert out.detail is not None
    assert out.detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS, out.detail.runs[0].error
    rows = list(csv.reader(io.StringIO(out.data.decode("utf-8-sig"))))
    assert len(rows) - 1 == len(expected)  # a header, then every row the server returns
    return out.detail


@pytest.mark.postgres
@pytest.mark.parametrize("case", PG_LEGIT, ids=lambda c: c.name)
def test_legitimate_postgres_query_is_exported(pg_walls: Walls, case: Legit) -> None:
    detail = check_exported_as_written(pg_walls, case)
    # approvers saw the database's own estimate
    assert detail.preview.estimated_rows >= 1
    assert any(e.action == "estimate" for e in detail.events)


@pytest.mark.mysql
@pytest.mark.parametrize("case", MYSQL_LEGIT, ids=lambda c: c.name)
def test_legitimate_mariadb_query_is_exported(mysql_walls: Walls, case: Legit) -> None:
    check_exported_as_written(mysql_walls, case)


# -- the live schema -------------------------------------------------------------------------

SCHEMA_PROBLEMS = [
    ("postgres", "SELECT * FROM walls_nosuch", 'relation "walls_nosuch" does not exist'),
    ("postgres", "SELECT nosuch FROM walls_victim", 'column "nosuch" does not exist'),
    ("postgres", "SELECT v::date FROM walls_victim", "cannot cast type integer to date"),
    ("mysql", "SELECT * FROM walls_nosuch", "walls_nosuch' doesn't exist"),
    ("mysql", "SELECT nosuch FROM walls_victim", "Unknown column 'nosuch'"),
]


@pytest.mark.parametrize(
    ("dialect", "sql", "words"),
    [pytest.param(*p, marks=getattr(pytest.mark, p[0])) for p in SCHEMA_PROBLEMS],
)
def test_unknown_names_fail_the_pre_check_in_the_databases_words(
    request: pytest.FixtureRequest, dialect: str, sql: str, words: str
) -> None:
    w: Walls = request.getfixturevalue("pg_walls" if dialect == "postgres" else "mysql_walls")
    out = submit_and_run(w, sql)
    assert out.refused
    (message,) = out.messages
    assert message == f"the database refused the query: {words}" or words in message
    for internal in ("psycopg", "pymysql", "(1146", "LINE 1", "sqlalche.me", "Traceback"):
        assert internal not in message


@pytest.mark.parametrize(
    "dialect",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_table_export_carries_the_databases_estimate(
    request: pytest.FixtureRequest, dialect: str
) -> None:
    w: Walls = request.getfixturevalue("pg_walls" if dialect == "postgres" else "mysql_walls")
    tables = [{"table": "walls_victim", "fields": ["id", "note"], "filter": "v >= 0"}]
    resp = w.svc.submit("mallory", dsn="victim", tables=tables)
    detail = w.svc.detail(resp.task_id)
    assert resp.ok, detail.precheck_messages
    assert detail.preview.estimated_rows >= 1
    assert any(e.action == "estimate" and "row(s)" in e.comment for e in detail.events)
