"""The `woxqaq` command line against the real service: output, files and exit codes.

Most tests call `service.cli.main` in-process (fast); a few run the CLI as a real
subprocess, `python -m service.cli` and the installed `woxqaq` console script, to prove
the entry points, the environment variables and the absence of tracebacks.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
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

    bad = woxqaq("list", "--page", "-1")
    assert bad.rc == cli.EXIT_REFUSED and "INVALID_ARGUMENT" in bad.err


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


def test_show_prints_the_databases_row_estimate() -> None:
    detail = pb.GetTaskDetailResponse(
        ok=True, task=pb.TaskListData(id="7"), preview=pb.TaskPreview(estimated_rows=1270)
    )
    assert "  estimate    about 1,270 row(s), by the database's plan" in cli.render_detail(detail)
    assert "estimate" not in cli.render_detail(pb.GetTaskDetailResponse(ok=True))
