"""Every Block Kit builder stays within Slack's limits with the longest input the service allows."""

from __future__ import annotations

import html
import json
import re

import pytest
from block_limits import check_message, check_view

from bot.blocks import approval, export_modal, home, results, tasks
from bot.blocks.export_modal import Metadata, parse_submission
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import task_service_pb2 as pb

LONG_ID = str(2**64 - 1)
NAME = "n" * 200
# The service's caps: statement 1,000,000, reason and comments 4000, names 200.
SQL = ("SELECT a.<x> & `b` ```, '" + "x" * 50 + "' FROM t -- <@U1> <!channel>\n") * 12_000
SQL = SQL[:1_000_000]
REASON = ("why & <because> " * 300)[:4000]


def long_task(status: int = pb.TASK_STATUS_APPROVING, *, sql: bool = True) -> pb.TaskListData:
    ded = pb.DataExportDetail(
        database=NAME, export_reason=REASON, exector=pb.EXEC_APPROVER, type=pb.EXPORT_TYPE_EXCEL
    )
    if sql:
        ded.ebs.statement = SQL
    else:
        for i in range(500):
            ded.eatt.option.add(
                table=f"{i}{NAME}"[:200], fields=[NAME] * 20, filter="a > 1 AND " * 400
            )
    return pb.TaskListData(
        id=LONG_ID,
        dsn=NAME,
        database=NAME,
        submitter=NAME,
        status=status,
        ded=ded,
        schedule=pb.Schedule(
            trigger=pb.TRIGGER_KIND_CRON, cron="*/5 " * 50, timezone="Z" * 64, channel="C" * 64
        ),
    )


def events(n: int = 100) -> list[pb.TaskEvent]:
    out = []
    for i in range(n):
        action = ["approve", "reject", "approved", "cancel", "execute"][i % 5]
        out.append(pb.TaskEvent(actor=NAME, action=action, comment=REASON))
    return out


def run(status: int, error: str = "") -> pb.TaskRun:
    return pb.TaskRun(
        id=LONG_ID,
        status=status,
        executor=NAME,
        rows=2**62,
        bytes=2**62,
        filename=NAME,
        error=error,
    )


STATUSES = [
    pb.TASK_STATUS_APPROVING,
    pb.TASK_STATUS_APPROVED,
    pb.TASK_STATUS_NOT_APPROVED,
    pb.TASK_STATUS_CANCELED,
    pb.TASK_STATUS_EXECUTE_SUCCESS,
]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("sql", [True, False])
def test_task_messages_fit_slack_limits(status: int, sql: bool) -> None:
    task = long_task(status, sql=sql)
    messages = [
        approval.approval_message(task, events(), 20),
        results.decision_dm(task, events()),
        results.execute_prompt(task),
        results.execute_prompt(task, started_by=NAME, run_id=LONG_ID),
        results.delivery_problem(task, "C" * 64, "channel_not_found"),
        tasks.task_list("Your recent exports", [task] * 20, 10**9),
        tasks.task_detail(
            pb.GetTaskDetailResponse(
                task=task,
                runs=[run(pb.TASK_STATUS_EXECUTE_FAILED, "e" * 10_000)] * 50,
                precheck_messages=["p & <q>" * 100] * 50,
                events=events(),
            ),
            NAME,
        ),
        tasks.help_message("x" * 5000),
    ]
    for msg in messages:
        assert check_message(msg) == [], msg["text"]


@pytest.mark.parametrize("url_len", [100, 3000, 3001, 20_000])
def test_run_messages_fit_slack_limits(url_len: int) -> None:
    task = long_task(pb.TASK_STATUS_EXECUTE_SUCCESS)
    link = results.Link("https://example.com/" + "u" * url_len, None, NAME)
    for msg in (
        results.run_message(task, run(pb.TASK_STATUS_EXECUTING), rows_so_far=2**62),
        results.run_message(
            task, run(pb.TASK_STATUS_EXECUTE_SUCCESS), link=link, link_problem="x" * 9000
        ),
        results.run_message(task, run(pb.TASK_STATUS_EXECUTE_FAILED, "<boom> & " * 2000)),
        results.run_message(task, run(pb.TASK_STATUS_CANCELED, "canceled by " + NAME)),
    ):
        assert check_message(msg) == []


def test_a_running_export_offers_its_submitter_a_stop() -> None:
    task = long_task(pb.TASK_STATUS_EXECUTING)
    task.submitter = "U_SUB"
    detail = pb.GetTaskDetailResponse(task=task, runs=[run(pb.TASK_STATUS_EXECUTING)])

    def buttons(msg: dict) -> list[str]:
        return [
            e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]
        ]

    assert buttons(tasks.task_detail(detail, "U_SUB")) == ["stop_run"]
    assert buttons(tasks.task_detail(detail, "U_OTHER")) == []
    assert buttons(results.run_message(task, run(pb.TASK_STATUS_EXECUTING))) == ["stop_run"]
    stopped = results.run_message(task, run(pb.TASK_STATUS_CANCELED, "canceled by U_SUB"))
    assert buttons(stopped) == [] and "was stopped" in stopped["text"]


def test_approval_shows_the_sql_safely_and_offers_the_rest() -> None:
    msg = approval.approval_message(long_task(), [], 1)
    text = json.dumps(msg["blocks"])
    assert "<@U1>" not in text and "<!channel>" not in text  # user text cannot mention
    assert [
        e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]
    ] == [
        "approve_task",
        "reject_task",
        "show_sql",
    ]
    short = long_task()
    short.ded.ebs.statement = "SELECT 1"
    msg = approval.approval_message(short, [], 1)
    assert "show_sql" not in json.dumps(msg)


def test_full_sql_modal_loses_no_character_it_shows() -> None:
    view = approval.full_sql_modal(LONG_ID, SQL)
    assert check_view(view) == []
    shown = "".join(
        html.unescape(re.fullmatch(r"```(.*)```", b["text"]["text"], re.S).group(1))
        for b in view["blocks"]
        if b["type"] == "section"
    )
    assert SQL.replace("```", "ʼʼʼ").startswith(shown) and len(shown) > 150_000
    assert "more characters not shown" in json.dumps(view["blocks"][-1])


def test_modals_fit_slack_limits() -> None:
    datasources = [
        npb.Datasource(name=f"{i}{NAME}"[:200], description="d" * 2000) for i in range(150)
    ]
    meta = Metadata(
        mode="tables", channel="C" * 64, response_url="https://hooks.slack.com/" + "r" * 5000
    )
    assert len(meta.dump()) <= 3000
    for view in (
        export_modal.export_modal(datasources, meta, problem="p" * 5000),
        export_modal.export_modal(datasources, Metadata(), problem=""),
        export_modal.export_modal([], Metadata()),
        export_modal.message_modal("t" * 100, "x" * 10_000),
        approval.reject_modal(LONG_ID, {"response_url": "r" * 2000}),
    ):
        assert check_view(view) == []


def test_home_fits_slack_limits() -> None:
    many = [long_task(s) for s in STATUSES] * 4
    view = home.home_view(
        NAME,
        to_approve=many,
        to_approve_total=10**6,
        to_execute=many,
        to_execute_total=10**6,
        mine=many,
        mine_total=10**6,
        problem="x" * 5000,
    )
    assert check_view(view) == []


def test_form_reads_back_into_a_request() -> None:
    def v(**fields):
        out = {}
        for k, val in fields.items():
            if k in ("datasource", "format", "encoding", "content", "executor"):
                out[k] = {k: {"selected_option": {"value": val}}}
            elif k == "export_all":
                out[k] = {k: {"selected_options": [{"value": "all"}] if val else []}}
            else:
                out[k] = {k: {"value": val}}
        return out

    parsed = parse_submission(
        v(
            datasource="shop",
            reason="r",
            tables="orders, customers",
            fields="orders: id, amount\ncustomers: name",
            filter="orders: amount > 5",
            format="excel",
            executor="committer",
        ),
        Metadata(mode="tables"),
    )
    assert parsed.errors == {}
    req = parsed.request
    assert [(o.table, list(o.fields), o.all_field, o.filter) for o in req.ded.eatt.option] == [
        ("orders", ["id", "amount"], False, "amount > 5"),
        ("customers", ["name"], False, ""),
    ]
    assert req.ded.type == pb.EXPORT_TYPE_EXCEL and req.ded.exector == pb.EXEC_COMMITTER
    bad = parse_submission(
        v(datasource="shop", reason="r", tables="a, b", fields="x, y"), Metadata(mode="tables")
    )
    assert set(bad.errors) == {"fields"}
    both = parse_submission(
        v(datasource="shop", reason="r", tables="a", export_all=True), Metadata(mode="tables")
    )
    assert set(both.errors) == {"tables"}


def test_approval_shows_the_databases_row_estimate() -> None:
    short = long_task()
    short.ded.ebs.statement = "SELECT 1"
    estimate = pb.TaskEvent(
        actor="pre-check", action="estimate", comment="about 1,270 row(s), by the database's plan"
    )
    text = json.dumps(approval.approval_message(short, [estimate], 1)["blocks"])
    assert "Rows: about 1,270 row(s), by the database's plan" in text
    assert "Rows:" not in json.dumps(approval.approval_message(short, [], 1)["blocks"])
