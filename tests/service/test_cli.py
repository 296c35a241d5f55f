"""The `woxqaq` command line against the real service: output, files and exit codes.

Most tests call `service.cli.main` in-process (fast); a few run the CLI as a real
subprocess, `python -m service.cli` and the installed `woxqaq` console script, to prove
the entry points, the environment variables and the absence of tracebacks.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fake_clock import Clock
from service_support import Running

from service import cli
from woxqaq.v1 import task_service_pb2 as pb

REPO = Path(__file__).resolve().parents[2]
PRODUCTS_SQL = "SELECT sku, title, price FROM products ORDER BY sku"
CRON = "0 9 * * MON-FRI"
SUBMITTED = re.compile(r"^Task (\d+) submitted: APPROVING \(waiting for approval\)$")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def svc(start_service: Callable[..., Running]) -> Running:
    return start_service()


@pytest.fixture
def woxqaq(svc: Running, capsys: pytest.CaptureFixture[str]) -> Cli:
    return cli_for(svc, capsys)


def cli_for(svc: Running, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `woxqaq --addr <svc> --user <user> ARGS...` in-process; its exit code and output."""

    def run(*args: str, user: str | None = "zoe", addr: str | None = None) -> Result:
        argv = ["--addr", addr or svc.addr]
        if svc.token:
            argv += ["--token", svc.token]
        if user is not None:
            argv += ["--user", user]
        capsys.readouterr()  # drop anything printed before
        rc = cli.main([*argv, *args])
        out, err = capsys.readouterr()
        return Result(rc, out, err)

    return run


def submit(woxqaq: Cli, *args: str, user: str = "zoe") -> str:
    """Submit through the CLI; the new task's id."""
    r = woxqaq("submit", "--dsn", "shop", "--reason", "monthly report", *args, user=user)
    assert r.rc == cli.EXIT_OK, (r.out, r.err)
    return submitted_id(r.out)


def submitted_id(out: str) -> str:
    match = SUBMITTED.fullmatch(out.strip())
    assert match, out
    return match.group(1)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_process(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WOXQAQ_")}
    return subprocess.run(
        cmd, env=base | env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


# -- submit -------------------------------------------------------------------------------


def test_submit_sql_prints_the_task_id_and_approving(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL)
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_APPROVING
    assert detail.task.submitter == "zoe"
    assert detail.task.ded.ebs.statement == PRODUCTS_SQL
    assert detail.task.ded.export_reason == "monthly report"
    assert detail.task.ded.exector == pb.EXEC_AUTO

    r = woxqaq("--json", "submit", "--dsn", "shop", "--sql", "SELECT 1 AS one", "--format", "excel")
    assert r.rc == cli.EXIT_OK, r.err
    body = r.json()
    assert body["task"]["status"] == "TASK_STATUS_APPROVING"
    assert body["task"]["ded"]["type"] == "EXPORT_TYPE_EXCEL"
    assert int(body["task"]["id"]) == int(task_id) + 1


def test_submit_of_a_delete_fails_its_pre_check(svc: Running, woxqaq: Cli) -> None:
    r = woxqaq("submit", "--dsn", "shop", "--sql", "DELETE FROM customers")
    assert r.rc == cli.EXIT_FAILED
    head, *messages = r.out.strip().splitlines()
    match = re.fullmatch(r"Task (\d+) failed its pre-check:", head)
    assert match, r.out
    task_id = match.group(1)
    assert messages and "DELETE" in messages[0] and "read-only" in messages[0]
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_PRE_CHECK_FAILED
    assert list(detail.precheck_messages) == [m.strip().removeprefix("- ") for m in messages]

    shown = woxqaq("show", task_id)
    assert shown.rc == cli.EXIT_OK
    assert f"Task {task_id}: PRE_CHECK_FAILED" in shown.out
    assert "pre-check failed:" in shown.out and "read-only" in shown.out

    r = woxqaq("submit", "--dsn", "shop", "--sql", "UPDATE orders SET paid = 1", "--json")
    assert r.rc == cli.EXIT_FAILED
    body = r.json()
    assert body["task"]["status"] == "TASK_STATUS_PRE_CHECK_FAILED"
    assert any("UPDATE" in m for m in body["precheck_messages"])


def test_submit_table_mode(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(
        woxqaq, "--table", "orders", "--fields", "id, status", "--filter", "status = 'paid'"
    )
    option = svc.detail(task_id).task.ded.eatt.option
    assert [(o.table, list(o.fields), o.all_field, o.filter) for o in option] == [
        ("orders", ["id", "status"], False, "status = 'paid'")
    ]
    shown = woxqaq("show", task_id)
    assert "  table       orders (id, status) where status = 'paid'" in shown.out.splitlines()

    two = submit(woxqaq, "--table", "orders", "--table", "customers")
    assert [(o.table, o.all_field) for o in svc.detail(two).task.ded.eatt.option] == [
        ("orders", True),
        ("customers", True),
    ]

    missing = woxqaq("submit", "--dsn", "shop", "--table", "no_such_table")
    assert missing.rc == cli.EXIT_FAILED
    assert "failed its pre-check" in missing.out and "no_such_table" in missing.out

    before = svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).total
    bad = woxqaq("submit", "--dsn", "shop", "--table", "a", "--table", "b", "--fields", "id")
    assert bad.rc == cli.EXIT_USAGE
    assert "exactly one --table" in bad.err and bad.out == ""
    assert svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).total == before


def test_submit_with_a_schedule_shows_the_next_runs(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(
        woxqaq, "--sql", PRODUCTS_SQL, "--cron", CRON, "--tz", "Asia/Shanghai", "--channel", "C1"
    )
    schedule = svc.detail(task_id).task.schedule
    assert (schedule.trigger, schedule.cron, schedule.timezone, schedule.channel) == (
        pb.TRIGGER_KIND_CRON,
        CRON,
        "Asia/Shanghai",
        "C1",
    )

    def next_runs(text: str) -> list[datetime]:
        lines = [line for line in text.splitlines() if line.startswith("  next runs ")]
        assert len(lines) == 1, text
        parts = lines[0].removeprefix("  next runs").strip().split(", ")
        assert len(parts) == 3 and all(p.endswith(" 09:00 CST") for p in parts), parts
        return [datetime.strptime(p.removesuffix(" CST"), "%Y-%m-%d %H:%M") for p in parts]

    shown = woxqaq("show", task_id)
    assert shown.rc == cli.EXIT_OK
    assert f"Task {task_id}: APPROVING" in shown.out
    assert "  schedule    0 9 * * MON-FRI (Asia/Shanghai) -> C1" in shown.out.splitlines()
    runs = next_runs(shown.out)
    assert all(t.weekday() < 5 for t in runs)  # MON-FRI
    assert runs[0] > datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert runs == sorted(set(runs)) and (runs[-1] - runs[0]).days <= 4  # consecutive weekdays

    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    shown = woxqaq("show", task_id)
    assert f"Task {task_id}: APPROVED" in shown.out  # a schedule does not run at approval
    after = next_runs(shown.out)
    assert after == runs or after[0] > runs[0]  # unless 09:00 CST passed meanwhile

    # a schedule is not started by hand
    r = woxqaq("execute", task_id)
    assert r.rc == cli.EXIT_REFUSED and "FAILED_PRECONDITION" in r.err and CRON in r.err

    bad = woxqaq("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL, "--cron", "61 * * * *")
    assert bad.rc == cli.EXIT_FAILED and "failed its pre-check" in bad.out


# -- decisions ----------------------------------------------------------------------------


def test_approve_needs_an_approver_who_is_not_the_submitter(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL, "--executor", "committer")

    for user, words in (("zoe", "you submitted"), ("mallory", "not an approver")):
        r = woxqaq("approve", task_id, user=user)
        assert r.rc == cli.EXIT_REFUSED, (user, r)
        assert r.out == ""
        assert r.err.startswith("woxqaq: PERMISSION_DENIED: ") and words in r.err
        assert len(r.err.strip().splitlines()) == 1
    alice_too = submit(woxqaq, "--sql", PRODUCTS_SQL, user="alice")
    r = woxqaq("approve", alice_too, user="alice")  # an approver may not approve her own task
    assert r.rc == cli.EXIT_REFUSED and "PERMISSION_DENIED" in r.err
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_APPROVING

    r = woxqaq("approve", task_id, "-m", "ok for the report", user="alice")
    assert (r.rc, r.out.strip(), r.err) == (cli.EXIT_OK, f"Approved task {task_id}.", "")
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_APPROVED
    assert any(e.actor == "alice" and e.comment == "ok for the report" for e in detail.events)

    again = woxqaq("approve", task_id, user="bob")
    assert again.rc == cli.EXIT_REFUSED and "FAILED_PRECONDITION" in again.err

    assert woxqaq("--json", "approve", alice_too, user="bob").json() == {"ok": True}


def test_reject_needs_a_comment(
    svc: Running, woxqaq: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL)
    with pytest.raises(SystemExit) as info:  # argparse: bad usage
        woxqaq("reject", task_id, user="bob")
    assert info.value.code == cli.EXIT_USAGE
    assert "--comment" in capsys.readouterr().err

    r = woxqaq("reject", task_id, "-m", "too broad", user="bob")
    assert (r.rc, r.out.strip()) == (cli.EXIT_OK, f"Rejected task {task_id}.")
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_NOT_APPROVED


def test_cancel(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL)
    r = woxqaq("cancel", task_id, user="bob")
    assert (
        r.rc == cli.EXIT_REFUSED and "PERMISSION_DENIED" in r.err and "only the submitter" in r.err
    )

    r = woxqaq("cancel", task_id, "-m", "not needed")
    assert (r.rc, r.out.strip()) == (cli.EXIT_OK, f"Canceled task {task_id}.")
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_CANCELED
    assert woxqaq("show", task_id).out.startswith(f"Task {task_id}: CANCELED")

    again = woxqaq("cancel", task_id)
    assert again.rc == cli.EXIT_REFUSED and "can no longer be canceled" in again.err
    late = woxqaq("approve", task_id, user="alice")
    assert late.rc == cli.EXIT_REFUSED and "FAILED_PRECONDITION" in late.err


# -- list ---------------------------------------------------------------------------------


def test_list_as_a_table_and_as_json(svc: Running, woxqaq: Cli) -> None:
    long_sql = "SELECT sku, title, price, stock FROM products WHERE stock > 0 ORDER BY sku, title"
    approving = submit(woxqaq, "--sql", long_sql)
    orders = submit(woxqaq, "--table", "orders")
    bobs = submit(woxqaq, "--sql", "SELECT id FROM customers", user="bob")
    failed = woxqaq("submit", "--dsn", "shop", "--sql", "DROP TABLE orders")
    assert failed.rc == cli.EXIT_FAILED
    dropped = failed.out.split()[1]

    r = woxqaq("list")
    assert r.rc == cli.EXIT_OK
    lines = r.out.strip().splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "DATASOURCE",
        "SUBMITTER",
        "CREATED",
        "(UTC)",
        "EXPORT",
    ]
    assert set(lines[1]) == {"-", " "}
    rows = [line.split() for line in lines[2:-1]]
    assert [row[0] for row in rows] == [dropped, bobs, orders, approving]  # newest first
    assert rows[0][1] == "PRE_CHECK_FAILED" and rows[1][:4] == [bobs, "APPROVING", "shop", "bob"]
    assert lines[2 + 2].endswith("  orders")
    assert lines[2 + 3].endswith(f"  {long_sql[:57]}...")  # long statements are cut
    assert lines[-1] == "4 task(s), page 1 of 1"

    for argv in (("--json", "list"), ("list", "--json")):  # before or after the command
        r = woxqaq(*argv)
        assert r.rc == cli.EXIT_OK, r.err
        body = r.json()
        assert body["total"] == 4 and [t["id"] for t in body["data"]] == [
            dropped,
            bobs,
            orders,
            approving,
        ]

    def ids(*args: str, user: str = "zoe") -> list[str]:
        r = woxqaq("list", "--json", *args, user=user)
        assert r.rc == cli.EXIT_OK, r.err
        return [t["id"] for t in r.json().get("data", [])]

    assert ids("--status", "approving") == [bobs, orders, approving]
    assert ids("--status", "pre-check-failed") == [dropped]
    assert ids("--role", "committer", user="bob") == [bobs]
    assert ids("--role", "to-approve", user="alice") == [bobs, orders, approving]
    assert ids("--role", "to-approve", user="bob") == [orders, approving]  # not his own
    assert ids("--role", "to-approve", user="zoe") == []  # not an approver
    assert ids("--dsn", "nowhere") == []

    page = woxqaq("list", "--page-size", "3", "--page", "2")
    assert page.out.strip().splitlines()[-1] == "4 task(s), page 2 of 2"
    assert [line.split()[0] for line in page.out.strip().splitlines()[2:-1]] == [approving]


# -- execution ----------------------------------------------------------------------------


def test_execute_watch_url_and_download(
    svc: Running, woxqaq: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL, "--executor", "committer")

    early = woxqaq("execute", task_id)
    assert early.rc == cli.EXIT_REFUSED and "not approved yet" in early.err
    none_yet = woxqaq("watch", task_id)
    assert (none_yet.rc, none_yet.out.strip()) == (
        cli.EXIT_OK,
        f"Task {task_id} has no run to watch.",
    )
    no_file = woxqaq("url", task_id)
    assert no_file.rc == cli.EXIT_REFUSED and "FAILED_PRECONDITION" in no_file.err

    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_APPROVED  # committer: no auto run
    other = woxqaq("execute", task_id, user="alice")
    assert other.rc == cli.EXIT_REFUSED and "PERMISSION_DENIED" in other.err

    r = woxqaq("execute", task_id)
    assert r.rc == cli.EXIT_OK, r.err
    match = re.fullmatch(
        rf"Started run (\d+) of task {task_id}; follow it with: woxqaq watch {task_id}",
        r.out.strip(),
    )
    assert match, r.out
    run_id = match.group(1)

    watched = woxqaq("watch", task_id)  # follows the run to its end
    assert watched.rc == cli.EXIT_OK, watched.err
    final = watched.out.split("\r")[-1]
    assert f"run {run_id}" in final and "EXECUTE_SUCCESS" in final and "done: shop_task" in final
    detail = svc.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS})
    run = detail.runs[0]

    progress = [json.loads(line) for line in woxqaq("watch", task_id, "--json").out.splitlines()]
    assert progress[-1]["status"] == "TASK_STATUS_EXECUTE_SUCCESS"
    assert progress[-1]["run_id"] == run_id and int(progress[-1]["rows"]) == run.rows

    shown = woxqaq("show", task_id)
    assert f"    #{run_id} EXECUTE_SUCCESS  by zoe: {run.rows} rows" in shown.out

    url = woxqaq("url", task_id)
    assert url.rc == cli.EXIT_OK
    link, valid = url.out.strip().splitlines()
    assert link.startswith("http://") and run.filename in link
    assert valid.startswith(f"{run.filename}, valid until ") and valid.endswith(" UTC")
    assert woxqaq("url", task_id, "--run", run_id, "--json").json()["filename"] == run.filename

    # the export's rows, straight from the demo database
    with sqlite3.connect(tmp_path / "shop.db") as db:
        expected = [[str(v) for v in row] for row in db.execute(PRODUCTS_SQL)]
    assert run.rows == len(expected) > 0

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    saved = woxqaq("download", task_id, "-o", str(out_dir))
    assert saved.rc == cli.EXIT_OK, saved.err
    target = out_dir / run.filename
    assert saved.out.strip() == f"Saved {target} ({target.stat().st_size:,} bytes)"
    with target.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["sku", "title", "price"]
    assert [row[:2] for row in rows[1:]] == [row[:2] for row in expected]
    assert list(out_dir.iterdir()) == [target]  # no .part left behind

    named = tmp_path / "products.csv"
    r = woxqaq("--json", "download", task_id, "--output", str(named))
    assert r.rc == cli.EXIT_OK
    assert r.json() == {"path": str(named), "bytes": named.stat().st_size, "filename": run.filename}
    assert named.read_bytes() == target.read_bytes()

    nowhere = woxqaq("download", task_id, "-o", str(tmp_path / "missing" / "x.csv"))
    assert nowhere.rc == cli.EXIT_USAGE and "does not exist" in nowhere.err

    # the file server refuses a tampered link: a one-line message, no traceback, no .part
    real_urlopen = urllib.request.urlopen

    def tampered(url: str, timeout: float) -> Any:
        return real_urlopen(url.replace("sig=", "sig=0"), timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", tampered)
    refused = woxqaq("download", task_id, "-o", str(tmp_path / "refused.csv"))
    assert refused.rc == cli.EXIT_REFUSED
    assert re.fullmatch(
        r"woxqaq: the file server refused the download: HTTP 4\d\d .*\n", refused.err
    )
    assert not list(tmp_path.glob("refused.csv*"))


def test_watch_of_a_failing_run_exits_3(svc: Running, woxqaq: Cli) -> None:
    # passes the pre-check, fails at run time (SQLite: abs() of the minimum integer overflows)
    task_id = submit(
        woxqaq, "--sql", "SELECT abs(-9223372036854775807 - 1) AS x", "--executor", "committer"
    )
    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    assert woxqaq("execute", task_id).rc == cli.EXIT_OK
    watched = woxqaq("watch", task_id)
    assert watched.rc == cli.EXIT_FAILED, watched.out
    assert "EXECUTE_FAILED" in watched.out.split("\r")[-1]
    shown = woxqaq("show", task_id)
    assert "EXECUTE_FAILED" in shown.out and "overflow" in shown.out.lower()


# -- errors -------------------------------------------------------------------------------


def test_unknown_and_malformed_task_ids(svc: Running, woxqaq: Cli) -> None:
    for argv in (("show", "999"), ("approve", "999"), ("watch", "999"), ("url", "999")):
        r = woxqaq(*argv, user="alice")
        assert r.rc == cli.EXIT_REFUSED, argv
        assert r.out == ""
        assert r.err == "woxqaq: NOT_FOUND: task 999 does not exist\n", argv

    for argv in (
        ("show", "abc"),
        ("approve", "1x"),
        ("cancel", "²"),
        ("download", "-"),
        ("watch", ""),
    ):
        r = woxqaq(*argv)
        assert r.rc == cli.EXIT_USAGE, argv
        assert "is not a task id" in r.err and "Traceback" not in r.err


def test_missing_user_is_a_usage_error(
    svc: Running, woxqaq: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WOXQAQ_USER", raising=False)

    def no_login() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_login)  # a container's bare uid
    for argv, user in (
        (("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL), None),
        (("list",), None),
        (("approve", "1"), ""),
        (("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL), "  "),
    ):
        r = woxqaq(*argv, user=user)
        assert r.rc == cli.EXIT_USAGE, (argv, r)
        assert r.err == "woxqaq: say who you are: --user NAME (or set WOXQAQ_USER)\n"
        assert r.out == ""
    assert svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).total == 0

    monkeypatch.setenv("WOXQAQ_USER", "vic")
    r = woxqaq("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL, user=None)
    assert r.rc == cli.EXIT_OK, r.err
    assert svc.detail(submitted_id(r.out)).task.submitter == "vic"

    monkeypatch.setattr("getpass.getuser", lambda: "loginname")
    monkeypatch.delenv("WOXQAQ_USER")
    r = woxqaq("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL, user=None)
    assert r.rc == cli.EXIT_OK, r.err
    assert svc.detail(submitted_id(r.out)).task.submitter == "loginname"


def test_unreachable_service(woxqaq: Cli) -> None:
    for addr in (f"127.0.0.1:{closed_port()}", "no-such-host.invalid:50051"):
        for argv in (("list",), ("show", "1"), ("watch", "1"), ("approve", "1")):
            r = woxqaq(*argv, addr=addr)
            assert r.rc == cli.EXIT_UNREACHABLE, (addr, argv, r)
            assert r.out == ""
            assert r.err == f"woxqaq: cannot reach the service at {addr}; is it running?\n"


def test_bearer_token(
    start_service: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    svc = start_service(server={"token": "s3cret-token"})
    base = ["--addr", svc.addr, "--user", "zoe"]
    assert cli.main([*base, "list"]) == cli.EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("woxqaq: UNAUTHENTICATED: missing credentials") and "s3cret" not in err
    assert cli.main([*base, "--token", "wrong", "list"]) == cli.EXIT_REFUSED
    assert "invalid token" in capsys.readouterr().err
    assert cli.main([*base, "--token", "s3cret-token", "list"]) == cli.EXIT_OK
    assert capsys.readouterr().out.strip().endswith("0 task(s), page 1 of 1")


# -- real processes -----------------------------------------------------------------------


def test_python_m_service_cli_with_environment_variables(
    start_service: Callable[..., Running],
) -> None:
    svc = start_service(server={"token": "s3cret-token"})
    env = {
        "WOXQAQ_SERVICE_ADDR": svc.addr,
        "WOXQAQ_SERVICE_TOKEN": "s3cret-token",
        "WOXQAQ_USER": "zoe",
    }
    woxqaq = [sys.executable, "-m", "service.cli"]
    p = run_process([*woxqaq, "--json", "submit", "--dsn", "shop", "--sql", PRODUCTS_SQL], env)
    assert p.returncode == cli.EXIT_OK, p.stderr
    task = json.loads(p.stdout)["task"]
    assert task["submitter"] == "zoe" and task["status"] == "TASK_STATUS_APPROVING"

    p = run_process([*woxqaq, "approve", task["id"]], env | {"WOXQAQ_USER": "alice"})
    assert (p.returncode, p.stdout.strip()) == (cli.EXIT_OK, f"Approved task {task['id']}.")

    p = run_process([*woxqaq, "approve", task["id"]], env | {"WOXQAQ_USER": "mallory"})
    assert p.returncode == cli.EXIT_REFUSED and "PERMISSION_DENIED" in p.stderr
    assert "Traceback" not in p.stderr

    p = run_process([*woxqaq, "show", "12345"], env)
    assert p.returncode == cli.EXIT_REFUSED
    assert p.stderr == "woxqaq: NOT_FOUND: task 12345 does not exist\n"

    p = run_process([*woxqaq, "submit", "--dsn", "shop"], env)  # no --sql nor --table
    assert p.returncode == cli.EXIT_USAGE and "usage: woxqaq submit" in p.stderr


def test_console_script_and_unreachable_service_in_a_process() -> None:
    script = Path(sys.executable).with_name("woxqaq")
    if not script.exists():
        pytest.skip("the woxqaq console script is not installed next to this python")
    addr = f"127.0.0.1:{closed_port()}"
    for cmd in ([str(script)], [sys.executable, "-m", "service.cli"]):
        p = run_process([*cmd, "--user", "zoe", "list"], {"WOXQAQ_SERVICE_ADDR": addr})
        assert p.returncode == cli.EXIT_UNREACHABLE, p.stderr
        assert p.stdout == ""
        assert p.stderr == f"woxqaq: cannot reach the service at {addr}; is it running?\n"

    p = run_process([str(script), "--help"], {})
    assert p.returncode == cli.EXIT_OK and "usage: woxqaq" in p.stdout
    for command in ("submit", "list", "show", "approve", "cancel", "execute", "watch", "download"):
        assert command in p.stdout


# -- bad input: one line, the documented exit code, nothing submitted ----------------------


def sql_files(tmp_path: Path) -> dict[str, Path]:
    """SQL files a user may point --sql-file at by mistake, and one saved by a Windows editor."""
    files = {
        "gbk": tmp_path / "gbk.sql",
        "empty": tmp_path / "empty.sql",
        "bom": tmp_path / "bom.sql",
    }
    files["gbk"].write_bytes("SELECT title AS 名称 FROM products".encode("gbk"))
    files["empty"].write_text("\n  \n", encoding="utf-8")
    files["bom"].write_text("\ufeff" + PRODUCTS_SQL, encoding="utf-8")
    return files


def test_submit_usage_errors_name_the_option_and_submit_nothing(
    svc: Running, woxqaq: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sql_files(tmp_path)
    one_table = "--fields and --filter go with exactly one --table"
    for args, words in (
        (("--sql", ""), "--sql is empty: give one SELECT statement"),
        (("--sql", " \n "), "--sql is empty"),
        (("--sql", PRODUCTS_SQL, "--tz", "Asia/Shanghai"), "--tz goes with --cron"),
        (("--sql", PRODUCTS_SQL, "--channel", "C1"), "--channel goes with --cron"),
        (("--sql", PRODUCTS_SQL, "--cron", " "), "--cron is empty"),
        (("--sql", PRODUCTS_SQL, "--fields", "sku"), one_table),
        (("--sql", PRODUCTS_SQL, "--filter", "sku = 'a'"), one_table),
        (("--all-tables", "--fields", "id"), one_table),
        (("--table", "orders", "--fields", " , "), "--fields names no field"),
        (("--table", " "), "--table is empty"),
        (("--sql-file", str(tmp_path / "nonexistent.sql")), "nonexistent.sql: no such file"),
        (("--sql-file", str(tmp_path)), "is a directory: name the file"),
        (("--sql-file", str(files["gbk"])), "is not UTF-8 text (byte 0x"),
        (("--sql-file", str(files["gbk"])), "iconv -f GBK -t UTF-8"),
        (("--sql-file", str(files["empty"])), "empty.sql is empty"),
    ):
        r = woxqaq("submit", "--dsn", "shop", *args)
        assert r.rc == cli.EXIT_USAGE, (args, r)
        assert r.out == "" and r.err.startswith("woxqaq: ") and r.err.count("\n") == 1, r.err
        assert words in r.err, (args, r.err)
    assert svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).total == 0

    # A byte-order mark is not part of the statement.
    task_id = submit(woxqaq, "--sql-file", str(files["bom"]))
    assert svc.detail(task_id).task.ded.ebs.statement == PRODUCTS_SQL
    # `-` reads standard input.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"SELECT 2 AS two\n")))
    task_id = submit(woxqaq, "--sql-file", "-")
    assert svc.detail(task_id).task.ded.ebs.statement == "SELECT 2 AS two\n"


def test_every_option_has_help_and_there_is_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = dict(subparsers.choices)
    assert {"datasources", "tables", "schedules"} <= set(commands)
    for name, command in [("woxqaq", parser), *commands.items()]:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help.strip(), (name, action.dest)
    assert all(a.help for a in subparsers._choices_actions), "every command has a summary"

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"woxqaq \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_every_subcommand_with_bad_input_exits_with_its_code_and_no_traceback(
    svc: Running, tmp_path: Path
) -> None:
    """Each case is a real `python -m service.cli` process; they run side by side."""
    files = sql_files(tmp_path)
    existing = tmp_path / "taken.csv"
    existing.write_text("keep me")
    usage, refused, failed = cli.EXIT_USAGE, cli.EXIT_REFUSED, cli.EXIT_FAILED
    cases: list[tuple[tuple[str, ...], int]] = [
        ((), usage),
        (("no-such-command",), usage),
        (("submit", "--dsn", "shop"), usage),
        (("submit", "--dsn", "shop", "--sql", ""), usage),
        (("submit", "--dsn", "shop", "--sql-file", "/nonexistent.sql"), usage),
        (("submit", "--dsn", "shop", "--sql-file", str(tmp_path)), usage),
        (("submit", "--dsn", "shop", "--sql-file", str(files["gbk"])), usage),
        (("submit", "--dsn", "shop", "--sql", "SELECT 1 AS a", "--tz", "UTC"), usage),
        (("submit", "--dsn", "shop", "--sql", "SELECT 1 AS a", "--fields", "a"), usage),
        (("submit", "--dsn", "shop", "--sql", "SELECT 1 AS a", "--format", "pdf"), usage),
        (("submit", "--dsn", "nowhere", "--sql", "SELECT 1 AS a"), refused),
        (("submit", "--dsn", "shop", "--sql", "DELETE FROM orders"), failed),
        (("submit", "--dsn", "shop", "--sql", PRODUCTS_SQL, "--cron", "61 * * * *"), failed),
        (("list", "--page", "0"), usage),
        (("list", "--page-size", "x"), usage),
        (("list", "--status", "sleeping"), usage),
        (("show", "abc"), usage),
        (("show", "999"), refused),
        (("approve", "1x"), usage),
        (("approve", "999"), refused),
        (("reject", "1"), usage),  # no --comment
        (("cancel", "²"), usage),
        (("cancel", "999"), refused),
        (("execute", "999"), refused),
        (("watch", ""), usage),
        (("watch", "999"), refused),
        (("url", "1", "--run", "latest"), usage),
        (("url", "1", "--expires-in", "-5"), usage),
        (("url", "999"), refused),
        (("download", "999", "-o", str(existing)), refused),
        (("download", "1", "-o", str(tmp_path / "missing" / "x.csv")), usage),
        (("datasources", "--bogus"), usage),
        (("tables",), usage),
        (("tables", "--dsn", "nowhere"), refused),
        (("tables", "--dsn", "shop", "--database", "nope"), refused),
        (("schedules", "extra"), usage),
        (("whoami", "extra"), usage),
        (("--ca-file", str(tmp_path / "missing.pem"), "list"), usage),
        (("--cert", str(files["empty"]), "list"), usage),  # without --key
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith("WOXQAQ_")}
    env = base | {"WOXQAQ_SERVICE_ADDR": svc.addr, "WOXQAQ_USER": "zoe"}
    procs = [
        (
            argv,
            code,
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", *argv],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for argv, code in cases
    ]
    for argv, code, proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (argv, out, err)
        assert "Traceback" not in err and "Traceback" not in out, (argv, err)
        if code == failed:  # the pre-check's answer is the command's output
            assert "failed its pre-check:" in out and err == "", (argv, out, err)
            continue
        assert out == "" and err.strip(), (argv, out)  # says why, on stderr
        last = err.strip().splitlines()[-1]
        assert last.startswith(("woxqaq: ", "woxqaq ")), (argv, err)  # ours or argparse's
    assert existing.read_text() == "keep me"
    assert svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest()).total == 2  # the two rc 3


def test_a_reader_that_goes_away_ends_the_output_quietly(svc: Running, woxqaq: Cli) -> None:
    """`woxqaq url 1 | head -1`, made certain: the output pipe is closed before anything is
    written, so every write fails with EPIPE."""
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL)
    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    svc.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS})
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOXQAQ_")}
    env |= {"WOXQAQ_SERVICE_ADDR": svc.addr, "WOXQAQ_USER": "zoe"}
    for argv, code in (
        (("url", task_id), cli.EXIT_BROKEN_PIPE),
        (("list",), cli.EXIT_BROKEN_PIPE),
        (("--json", "show", task_id), cli.EXIT_BROKEN_PIPE),
        (("--help",), 0),  # argparse itself ignores a failed write of its help
    ):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            p = subprocess.run(
                [sys.executable, "-m", "service.cli", *argv],
                env=env,
                cwd=REPO,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(write_end)
        assert (p.returncode, p.stderr) == (code, ""), argv


def test_ctrl_c_ends_with_130_and_one_line(tmp_path: Path) -> None:
    """Interrupted while waiting for a service that accepts the connection but never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        addr = f"127.0.0.1:{silent.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WOXQAQ_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--addr", addr, "--user", "zoe", "list"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # imported and waiting on the call
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (cli.EXIT_INTERRUPTED, "", "woxqaq: interrupted\n")


# -- approvals, failures and progress -----------------------------------------------------


def test_approve_says_how_many_approvals_are_still_needed(
    start_service: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    svc = start_service(shop={"required_approvals": 3})
    woxqaq = cli_for(svc, capsys)
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL, "--executor", "committer")
    shown = woxqaq("show", task_id).out.splitlines()[0]
    assert shown == f"Task {task_id}: APPROVING (approved 0 of 3 — 3 more approvals needed)"
    for user, said in (
        ("alice", "approved 1 of 3 — 2 more approvals needed"),
        ("bob", "approved 2 of 3 — one more approval needed"),
    ):
        r = woxqaq("approve", task_id, user=user)
        assert (r.rc, r.out.strip(), r.err) == (
            cli.EXIT_OK,
            f"Approved task {task_id}: {said}.",
            "",
        )
        shown = woxqaq("show", task_id).out.splitlines()[0]
        assert shown == f"Task {task_id}: APPROVING ({said})"
    r = woxqaq("approve", task_id, user="carol")
    assert (r.rc, r.out.strip(), r.err) == (cli.EXIT_OK, f"Approved task {task_id}.", "")
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_APPROVED


def test_watch_and_show_give_a_failures_whole_reason(svc: Running, woxqaq: Cli) -> None:
    # Passes the pre-check, fails at run time with SQLite's message quoting the whole path.
    path = "x" + "b" * 120
    task_id = submit(woxqaq, "--sql", f"SELECT json_extract('{{}}', '{path}') AS j")
    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    svc.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_FAILED})
    error = svc.detail(task_id).runs[0].error
    assert path in error and len(error) > 130

    watched = woxqaq("watch", task_id)
    assert watched.rc == cli.EXIT_FAILED
    final = watched.out.split("\r")[-1]
    assert "EXECUTE_FAILED" in final and error in final
    shown = woxqaq("show", task_id)
    assert f"EXECUTE_FAILED   by auto: {error}" in shown.out


LONG_SQL = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1500000) "
    "SELECT x, 'row number ' || x AS label FROM n"
)
LIVE = re.compile(r"#(\d+) EXECUTING +by auto: (\d+) rows, (\d+) bytes so far")


def test_show_gives_the_live_progress_of_a_running_export(svc: Running, woxqaq: Cli) -> None:
    task_id = submit(woxqaq, "--sql", LONG_SQL)
    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        shown = woxqaq("show", task_id).out
        if "EXECUTE_SUCCESS" in shown:
            break
        match = LIVE.search(shown)
        if match and int(match.group(2)) > 0 and (not seen or seen[-1][0] < int(match.group(2))):
            seen.append((int(match.group(2)), int(match.group(3))))
        time.sleep(0.1)
    assert len(seen) == 2, f"no growing progress seen: {seen}"
    assert seen[0][0] < seen[1][0] < 1_500_000 and 0 < seen[0][1] < seen[1][1]
    run = svc.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS}, timeout=120).runs[0]
    assert run.rows == 1_500_000
    assert (
        f"by auto: 1500000 rows, {run.bytes} bytes, {run.filename}" in woxqaq("show", task_id).out
    )


def test_show_on_another_replica_gives_progress_as_of_the_last_heartbeat(
    start_service: Callable[..., Running], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'tasks.db'}"
    settings = {"store_url": store, "export": {"stale_run_s": 3}, "scheduler": {"enabled": False}}
    runner, other = start_service(**settings), start_service(**settings)
    on_runner, on_other = cli_for(runner, capsys), cli_for(other, capsys)
    task_id = submit(on_runner, "--sql", LONG_SQL)
    assert on_runner("approve", task_id, user="alice").rc == cli.EXIT_OK  # runs on `runner`
    rows_seen = 0
    deadline = time.monotonic() + 30
    while not rows_seen and time.monotonic() < deadline:
        shown = on_other("show", task_id).out
        assert "EXECUTE_SUCCESS" not in shown, "finished before a heartbeat was seen"
        match = LIVE.search(shown)
        rows_seen = int(match.group(2)) if match else 0
        time.sleep(0.1)
    assert 0 < rows_seen < 1_500_000
    run = runner.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS}, timeout=120).runs[0]
    assert (run.rows, run.executor) == (1_500_000, "auto")


# -- download -----------------------------------------------------------------------------


def test_download_never_replaces_a_file_unless_forced(
    svc: Running, woxqaq: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL)
    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    run = svc.wait_for_status(task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS}).runs[0]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.chdir(out_dir)
    precious = out_dir / run.filename
    precious.write_text("precious")

    r = woxqaq("download", task_id)
    assert r.rc == cli.EXIT_USAGE and r.out == ""
    assert r.err == (
        f"woxqaq: {run.filename} exists; name another file with -o, or add --force to replace it\n"
    )
    r = woxqaq("download", task_id, "-o", str(out_dir))  # a directory holding that name
    assert r.rc == cli.EXIT_USAGE and "exists" in r.err
    assert precious.read_text() == "precious"

    named = out_dir / "products.csv"
    assert woxqaq("download", task_id, "-o", str(named)).rc == cli.EXIT_OK
    export = named.read_bytes()
    assert export.startswith(b"sku,title,price")
    again = woxqaq("download", task_id, "-o", str(named))
    assert again.rc == cli.EXIT_USAGE and "add --force" in again.err

    forced = woxqaq("download", task_id, "--force")
    assert forced.rc == cli.EXIT_OK, forced.err
    assert precious.read_bytes() == export
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([run.filename, "products.csv"])


# -- datasources, tables, schedules ---------------------------------------------------------


def test_datasources_and_tables(svc: Running, woxqaq: Cli, tmp_path: Path) -> None:
    r = woxqaq("datasources")
    assert r.rc == cli.EXIT_OK, r.err
    header, _rule, row, *rest = r.out.strip().splitlines()
    assert header.split() == ["NAME", "DIALECT", "APPROVERS", "APPROVALS", "REACHABLE", "AUDIT"]
    assert row.split("  ")[0] == "shop" and rest == []
    assert re.fullmatch(r"shop +sqlite +alice, bob, carol, dave, erin +1 +yes +-", row)
    body = woxqaq("datasources", "--json").json()["datasources"]
    assert [(d["name"], d["reachable"], d["required_approvals"]) for d in body] == [
        ("shop", True, 1)
    ]
    assert "not checked" in woxqaq("datasources", "--no-check").out

    r = woxqaq("tables", "--dsn", "shop")
    assert r.rc == cli.EXIT_OK, r.err
    lines = r.out.strip().splitlines()
    with sqlite3.connect(tmp_path / "shop.db") as db:
        names = sorted(
            n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        product_columns = [c[1] for c in db.execute("PRAGMA table_info(products)")]
    assert [line.split()[0] for line in lines[2:-1]] == names
    assert any(
        line.startswith("products ") and ", ".join(product_columns) in line for line in lines
    )
    assert lines[-1] == f"{len(names)} table(s) in shop, database main"
    missing = woxqaq("tables", "--dsn", "shop", "--database", "nope")
    assert missing.rc == cli.EXIT_REFUSED
    assert missing.err == "woxqaq: NOT_FOUND: database 'nope' does not exist in datasource 'shop'\n"


def test_a_schedule_without_slack_runs_and_is_downloaded_from_the_cli(
    start_service: Callable[..., Running], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clock = Clock()
    svc = start_service(clock=clock, scheduler={"enabled": False})
    woxqaq = cli_for(svc, capsys)
    task_id = submit(woxqaq, "--sql", PRODUCTS_SQL, "--cron", "* * * * *", "--tz", "Asia/Shanghai")
    other = submit(woxqaq, "--sql", PRODUCTS_SQL)  # not scheduled: not listed
    assert svc.detail(task_id).task.schedule.channel == ""
    shown = woxqaq("show", task_id).out
    assert (
        f"  schedule    * * * * * (Asia/Shanghai) -> no channel: each run is kept for "
        f"`woxqaq download {task_id} --run RUN`"
    ) in shown.splitlines()

    listed = woxqaq("schedules")
    assert listed.rc == cli.EXIT_OK
    rows = listed.out.strip().splitlines()
    assert rows[0].split() == ["ID", "STATUS", "DATASOURCE", "CRON", "CHANNEL", "NEXT", "RUNS"]
    assert re.fullmatch(
        rf"{task_id} +APPROVING +shop +\* \* \* \* \* \(Asia/Shanghai\) +- +after approval", rows[2]
    )
    assert rows[-1] == "1 schedule(s)" and other not in [r.split()[0] for r in rows[2:-1]]
    assert woxqaq("schedules", user="alice").out.strip().endswith("0 schedule(s)")

    assert woxqaq("approve", task_id, user="alice").rc == cli.EXIT_OK
    row = woxqaq("schedules").out.strip().splitlines()[2]
    assert "APPROVED" in row and row.count(" CST") == 3  # the next three firings
    assert [t["id"] for t in woxqaq("schedules", "--json").json()["data"]] == [task_id]

    clock.to_next_minute()
    assert len(svc.service.scheduler.tick()) == 1
    run = svc.wait_for_status(task_id, {pb.TASK_STATUS_APPROVED}).runs
    deadline = time.monotonic() + 30
    while run[0].status == pb.TASK_STATUS_EXECUTING and time.monotonic() < deadline:
        time.sleep(0.05)
        run = svc.detail(task_id).runs
    assert run[0].status == pb.TASK_STATUS_EXECUTE_SUCCESS, run
    shown = woxqaq("show", task_id).out
    assert f"    #{run[0].id} EXECUTE_SUCCESS  by scheduler: {run[0].rows} rows" in shown

    target = tmp_path / "scheduled.csv"
    saved = woxqaq("download", task_id, "--run", run[0].id, "-o", str(target))
    assert saved.rc == cli.EXIT_OK, saved.err
    with target.open(encoding="utf-8", newline="") as f:
        got = list(csv.reader(f))
    with sqlite3.connect(tmp_path / "shop.db") as db:
        expected = [[str(v) for v in row] for row in db.execute(PRODUCTS_SQL)]
    assert got[0] == ["sku", "title", "price"] and len(got) - 1 == len(expected) == run[0].rows


def test_show_prints_the_databases_row_estimate() -> None:
    detail = pb.GetTaskDetailResponse(
        ok=True, task=pb.TaskListData(id="7"), preview=pb.TaskPreview(estimated_rows=1270)
    )
    assert "  estimate    about 1,270 row(s), by the database's plan" in cli.render_detail(detail)
    assert "estimate" not in cli.render_detail(pb.GetTaskDetailResponse(ok=True))
