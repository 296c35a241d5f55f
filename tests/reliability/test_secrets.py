"""No password or token ever shows: a whole flow with secrets marked, then every log record,
gRPC answer, Slack payload, stored file, task-store row and process stderr searched."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from fault_support import ROOT, Caller, ServiceProcess, free_port, reliability_config, to_toml
from google.protobuf import text_format
from slack_standin import SlackStandIn
from sqlalchemy.engine import URL

from service.config import parse_config
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.slow]

MARKER = f"pw-{uuid.uuid4().hex}"
TOKEN_MARKER = f"tok-{uuid.uuid4().hex}"
S = pb.TaskStatus


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + json.dumps(record.__dict__, default=str))


@pytest.fixture
def every_log_record() -> Iterator[Capture]:
    root = logging.getLogger()
    handler, level = Capture(), root.level
    quiet = {
        name: logging.getLogger(name).level
        for name in logging.root.manager.loggerDict
        if logging.getLogger(name).level > logging.DEBUG
    }
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)


@pytest.fixture
def maria_user(mysql_url: URL) -> Iterator[URL]:
    """A MariaDB user whose password is the marker, and a table it may read."""
    user = f"wx_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(mysql_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS rel_items (id INT PRIMARY KEY, name VARCHAR(40))"
        )
        conn.exec_driver_sql("INSERT IGNORE INTO rel_items VALUES (1, 'bolt'), (2, 'nut')")
        for host in ("%%", "localhost"):  # %% : the driver formats the statement
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{MARKER}'")
            conn.exec_driver_sql(f"GRANT SELECT ON {mysql_url.database}.* TO '{user}'@'{host}'")
    try:
        yield mysql_url.set(username=user, password=MARKER)
    finally:
        with admin.connect() as conn:
            for host in ("%%", "localhost"):  # %% : the driver formats the statement
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'{host}'")
        admin.dispose()


class InProcess:
    """The in-process service with the shortcuts of ServiceProcess."""

    def __init__(self, service: Service, channel: grpc.Channel) -> None:
        self.service, self.channel = service, channel
        self.addr = f"127.0.0.1:{service.port}"

    def caller(self, user: str) -> Caller:
        return Caller(self.channel, user, TOKEN_MARKER, 30)

    def detail(self, task_id: str) -> pb.GetTaskDetailResponse:
        return self.caller("auditor").GetTaskDetail(pb.GetTaskDetailRequest(task_id=task_id))


class Seen:
    """Everything the outside world was shown."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> Any:
        if isinstance(value, grpc.RpcError):
            self.texts.append((where, f"{value.code()} {value.details()}"))
        elif hasattr(value, "DESCRIPTOR"):
            self.texts.append((where, text_format.MessageToString(value, as_utf8=True)))
        else:
            self.texts.append((where, str(value)))
        return value

    def call(self, where: str, fn: Callable[[], Any]) -> Any:
        try:
            return self.add(where, fn())
        except grpc.RpcError as exc:
            return self.add(where, exc)


def test_no_password_or_token_appears_anywhere(
    service_process: Callable[..., ServiceProcess],
    tmp_path: Path,
    fresh_pg_url: URL,
    pg_source: str,
    maria_user: URL,
    monkeypatch: pytest.MonkeyPatch,
    every_log_record: Capture,  # last: the fixtures' own set-up is not the service's doing
) -> None:
    seen = Seen()
    pg = sa.engine.make_url(pg_source)
    store = fresh_pg_url.set(password=MARKER).render_as_string(hide_password=False)
    unreachable = f"postgresql+psycopg://woxqaq:{MARKER}@127.0.0.1:{free_port()}/nowhere"
    config = reliability_config(tmp_path, store, pg.set(password=MARKER).render_as_string(False))
    config["server"]["token"] = TOKEN_MARKER
    config["datasources"] |= {
        # the password apart from the URL, from the environment
        "pgenv": {
            "url": pg.set(password=None).render_as_string(False),
            "password": "${REL_PG_PASSWORD}",
            "approvers": ["alice"],
        },
        "maria": {"url": maria_user.render_as_string(False), "approvers": ["alice", "bob"]},
        "maria_bad": {
            "url": maria_user.set(password=MARKER + "x").render_as_string(False),
            "approvers": ["alice"],
        },
        "down": {"url": unreachable, "approvers": ["alice"]},
    }
    for datasource in config["datasources"].values():  # superusers on the test servers
        datasource["allow_privileged_reader"] = True
    config["datasources"]["pg"]["approval_channel"] = APPROVAL_CHANNEL
    config["datasources"]["maria"]["approval_channel"] = APPROVAL_CHANNEL
    monkeypatch.setenv("REL_PG_PASSWORD", MARKER)
    # In this process, so that every logger's every record at DEBUG is captured.
    service = Service(parse_config(config), listen="127.0.0.1:0")
    service.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{service.port}")
    svc = InProcess(service, channel)
    slack = SlackStandIn().start()
    bot = Bot(slack, svc.addr, TOKEN_MARKER)
    bot.start_delivery()
    try:
        _slack_flow(svc, bot, slack, seen)
        _failures(svc, seen)
        seen.add("datasources", bot.service.datasources())
        wait_for(lambda: not bot.service.pull("probe", 1, 5), timeout=30, what="outbox drained")
    finally:
        bot.stop()
        slack.stop()
        channel.close()
        service.stop(grace_s=5)

    # The same failures by the service as a process, for its stderr (at DEBUG).
    config["server"]["data_dir"] = str(tmp_path / "proc-data")
    proc = service_process(config, env={"WOXQAQ_LOG_LEVEL": "DEBUG"})
    _failures(proc, seen)
    proc.stop()
    stderr_texts = [("service stderr", proc.stderr())]
    stderr_texts += _bad_starts(tmp_path, unreachable)

    haystack: list[tuple[str, str]] = [
        *seen.texts,
        *(("log record", line) for line in every_log_record.lines),
        *(("slack " + c.method, json.dumps(c.params)) for c in slack.calls),
        *_files(tmp_path / "data"),
        *_files(tmp_path / "proc-data"),
        *_store_rows(fresh_pg_url),
        *stderr_texts,
    ]
    # The search sees what it should: the secrets went in, and there is plenty to search.
    assert MARKER in proc.config_path.read_text() and TOKEN_MARKER in proc.config_path.read_text()
    assert "export failed" in proc.stderr()
    assert sum("DEBUG" in line for line in every_log_record.lines) > 100
    assert any(w.startswith("file ") for w, _ in haystack) and slack.calls
    leaks = [
        (where, text[max(0, text.find(m) - 200) : text.find(m) + 60])
        for where, text in haystack
        for m in (MARKER, TOKEN_MARKER)
        if m in text
    ]
    assert not leaks, "\n\n".join(f"{w}: …{t}…" for w, t in leaks[:10])

    # The failures the flow set up did happen and said why.
    errors = " | ".join(t for w, t in seen.texts if w.startswith("failed run"))
    assert "division by zero" in errors
    assert "Access denied" in errors
    assert "refused" in errors.lower() or "connection" in errors.lower()
    assert "not allowed" in " ".join(t for w, t in seen.texts if w == "raw dsn")
    assert len(stderr_texts) == 4 and all(text.strip() for _, text in stderr_texts)


def _submit(
    svc: Any, seen: Seen, dsn: str, *, sql: str = "", table: str = ""
) -> pb.SubmitTaskResponse:
    ded = pb.DataExportDetail(export_reason="audit")
    if sql:
        ded.ebs.statement = sql
    else:
        ded.eatt.option.add(table=table)
    req = pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_EXPORT, dsn=dsn, ded=ded)
    return seen.call(f"submit {dsn}", lambda: svc.caller("sam").SubmitTask(req))


def _run_to_end(svc: Any, seen: Seen, task_id: str) -> pb.GetTaskDetailResponse:
    seen.call(
        "approve",
        lambda: svc.caller("alice").Approve(
            pb.ApproveRequest(task_id=int(task_id), approver="alice")
        ),
    )
    done = wait_for(
        lambda: (
            (d := svc.detail(task_id)).task.status
            in (S.TASK_STATUS_EXECUTE_SUCCESS, S.TASK_STATUS_EXECUTE_FAILED)
            and d
        ),
        timeout=30,
        what=f"task {task_id} finished",
    )
    seen.add("detail", done)
    if done.task.status == S.TASK_STATUS_EXECUTE_FAILED:
        seen.add("failed run", done.runs[0].error)
    return done


def _slack_flow(svc: Any, bot: Bot, slack: SlackStandIn, seen: Seen) -> None:
    # Through Slack: SQL on PostgreSQL, a table on MariaDB (approved), and a rejection.
    for user, fields in (
        ("sam", {"datasource": "pg", "sql": "SELECT id, customer FROM rel_orders ORDER BY id"}),
        ("sam", {"datasource": "maria", "tables": "rel_items"}),
        ("sam", {"datasource": "pg", "sql": "SELECT count(*) AS n FROM rel_orders"}),
    ):
        assert bot.submit_export(user, **fields).status_code == 200
    approvals = wait_for(
        lambda: len(m := slack.in_channel(APPROVAL_CHANNEL)) == 3 and m, what="approval requests"
    )
    for i, msg in enumerate(sorted(approvals, key=lambda m: m.ts)):
        task_id = str(i + 1)
        if i < 2:
            bot.click("alice", "approve_task", task_id, channel=msg.channel, ts=msg.ts)
        else:
            bot.click("bob", "reject_task", task_id, channel=msg.channel, ts=msg.ts)
            view = wait_for(
                lambda: [
                    v for v in slack.views.values() if v.get("callback_id") == "reject_reason"
                ],
                what="reason modal",
            )[0]
            bot.submit_view(
                "bob",
                view,
                {"reason": {"reason_input": {"type": "plain_text_input", "value": "no"}}},
            )
    wait_for(
        lambda: len([m for m in slack.dm("sam") if "is ready" in m.text]) == 2,
        timeout=30,
        what="two results in Slack",
    )
    for task_id in ("1", "2"):
        seen.call(
            "link",
            lambda t=task_id: svc.caller("sam").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=t)),
        )
        seen.add("detail", svc.detail(task_id))
    for p in svc.caller("sam").WatchTask(pb.WatchTaskRequest(task_id="1")):
        seen.add("watch", p)


def _failures(svc: Any, seen: Seen) -> None:
    # Failures on purpose: a query error at run time (the pre-check's EXPLAIN folds a
    # constant 1 / 0, not a volatile one), a wrong password, an unreachable server (both
    # found by the pre-check, which reaches the server now).
    boom = "SELECT 1 / (random() * 0)::int AS boom"
    _run_to_end(svc, seen, _submit(svc, seen, "pg", sql=boom).task_id)
    _run_to_end(svc, seen, _submit(svc, seen, "pgenv", sql=boom).task_id)
    for dsn, what in (
        ("maria_bad", {"sql": "SELECT 1 AS one"}),
        ("down", {"sql": "SELECT 1 AS one"}),
        ("down", {"table": "rel_items"}),
        ("maria_bad", {"table": "rel_items"}),
    ):
        sub = _submit(svc, seen, dsn, **what)
        detail = seen.add("detail", svc.detail(sub.task_id))
        assert not sub.ok and detail.task.status == S.TASK_STATUS_PRE_CHECK_FAILED
        seen.add("failed run", " ".join(detail.precheck_messages))
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn=f"postgresql://u:{MARKER}@127.0.0.1/db",
        ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1"), export_reason="r"),
    )
    seen.call("raw dsn", lambda: svc.caller("sam").SubmitTask(req))
    seen.add("list", svc.caller("sam").ListTaskDetail(pb.ListTaskRequest(page_size=100)))


def _bad_starts(tmp_path: Path, unreachable: str) -> list[tuple[str, str]]:
    """Start-ups that fail: a bad key, an unparsable URL, an unreachable task store."""
    configs = {
        "bad key": {"datasources": {"x": {"url": unreachable, "required_approvals": "many"}}},
        "bad url": {"datasources": {"x": {"url": f"postgresql://u:{MARKER}@h:port/db"}}},
        "store down": {
            "server": {"data_dir": str(tmp_path / "bad"), "listen": f"127.0.0.1:{free_port()}"},
            "task_store": {"url": unreachable},
        },
    }
    out = []
    for name, data in configs.items():
        path = tmp_path / f"{name.replace(' ', '_')}.toml"
        path.write_text(to_toml(data))
        proc = subprocess.run(
            [sys.executable, "-m", "service"],
            cwd=tmp_path,
            env={"WOXQAQ_CONFIG": str(path), "PYTHONPATH": str(ROOT), "WOXQAQ_LOG_LEVEL": "DEBUG"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode in (1, 2), proc.stderr
        out.append((f"stderr of {name}", proc.stdout + proc.stderr))
    return out


def _files(root: Path) -> Iterator[tuple[str, str]]:
    for path in root.rglob("*"):
        yield "file name", str(path)
        if path.is_file():
            yield f"file {path}", path.read_bytes().decode("utf-8", errors="replace")


def _store_rows(url: URL) -> Iterator[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for (row,) in conn.execute(sa.text(f'SELECT t::text FROM "{table}" t')):
                    yield f"task store {table}", row
    finally:
        engine.dispose()
