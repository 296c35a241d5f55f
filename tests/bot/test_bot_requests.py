"""Requests into the Bolt app in both modes: Slack's retries, the form, the subcommands, App Home."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bot_support import APPROVAL_CHANNEL, MODES, Bot, values_for, wait_for
from slack_standin import SlackStandIn

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.parametrize("slack_mode", MODES)

SQL = "SELECT order_no, amount FROM orders"
BASE = {
    "datasource": "shop",
    "format": "csv",
    "encoding": "utf8",
    "content": "data",
    "executor": "auto",
    "reason": "audit",
}


def total_tasks(bot: Bot, user: str = "dave") -> int:
    return bot.service.list_tasks(user, pb.TASK_ROLE_COMMITTER, page_size=100).total


def test_export_opens_the_form_with_the_registry_datasources(bot: Bot, slack: SlackStandIn) -> None:
    view = bot.open_form("dave")
    select = next(b for b in view["blocks"] if b.get("block_id") == "datasource")["element"]
    assert [o["value"] for o in select["options"]] == ["shop"]
    meta = json.loads(view["private_metadata"])
    assert meta["channel"] == "C_GENERAL" and meta["response_url"].startswith(slack.url)
    ids = {b.get("block_id") for b in view["blocks"]}
    assert {"sql", "reason", "executor", "schedule", "cron", "timezone", "channel"} <= ids


def test_form_errors_are_shown_on_their_fields(bot: Bot) -> None:
    view = bot.open_form("dave")
    resp = bot.submit_view("dave", view, values_for({**BASE, "reason": "", "sql": ""}))
    body = resp.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"reason", "sql"}
    assert total_tasks(bot) == 0


def test_precheck_failure_is_shown_on_the_sql_field(bot: Bot) -> None:
    view = bot.open_form("dave")
    resp = bot.submit_view("dave", view, values_for({**BASE, "sql": "DELETE FROM orders"}))
    body = resp.json()
    assert body["response_action"] == "errors"
    assert "sql" in body["errors"] and body["errors"]["sql"]


def test_schedule_problems_land_on_the_schedule_fields(bot: Bot) -> None:
    view = bot.open_form("dave")
    fields = {
        **BASE,
        "sql": SQL,
        "schedule": True,
        "cron": "61 * * *",
        "channel": "C_REPORTS",
        "timezone": "Mars/Olympus",
    }
    body = bot.submit_view("dave", view, values_for(fields)).json()
    assert body["response_action"] == "errors"
    assert {"cron", "timezone"} <= set(body["errors"])


def test_table_mode_switch_and_submit(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.submit_export(
        "dave", tables="orders", fields="order_no, amount", filter="status = 'paid'"
    )
    assert resp.status_code == 200 and not resp.content
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval")
    task = bot.service.detail("dave", "1").task
    opt = task.ded.eatt.option[0]
    assert (opt.table, list(opt.fields), opt.filter) == (
        "orders",
        ["order_no", "amount"],
        "status = 'paid'",
    )


def test_slack_retries_never_create_a_second_task(bot: Bot, slack: SlackStandIn) -> None:
    view = bot.open_form("dave")
    values = values_for({**BASE, "sql": SQL})
    first = bot.submit_view("dave", view, values)
    retry = bot.submit_view("dave", view, values, retry=1)
    assert first.status_code == retry.status_code == 200
    # and a double click on Submit: both at once
    view2 = bot.open_form("dave")
    values2 = values_for({**BASE, "sql": SQL + " WHERE id > 1"})
    with ThreadPoolExecutor(3) as pool:
        codes = list(
            pool.map(lambda _: bot.submit_view("dave", view2, values2).status_code, range(3))
        )
    assert codes == [200, 200, 200]
    wait_for(lambda: len(slack.in_channel(APPROVAL_CHANNEL)) == 2, what="two approval requests")
    time.sleep(0.3)
    assert total_tasks(bot) == 2
    assert len(slack.in_channel(APPROVAL_CHANNEL)) == 2
    assert (
        len([c for c in slack.of("response_url") if "submitted" in c.params.get("text", "")]) == 2
    )


def test_event_retries_are_acknowledged_without_work(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.event({"type": "app_home_opened", "user": "alice", "tab": "home"}, retry=2)
    assert resp.status_code == 200
    time.sleep(0.3)
    assert not slack.of("views.publish")


def test_subcommands_answer_ephemerally(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL)
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval")
    replies = []
    for text in ("list", "show 1", "help", "frobnicate", "show abc", "show 999"):
        before = len(slack.of("response_url"))
        assert bot.command("dave", text).status_code == 200
        replies.append(wait_for(lambda b=before: slack.of("response_url")[b:], what=text)[0].params)
    assert all(r["response_type"] == "ephemeral" for r in replies)
    listing, show, helptext, unknown, bad, missing = (json.dumps(r) for r in replies)
    assert "#1" in listing and "Export #1" in show and "SELECT order_no" in show
    assert "/export list" in helptext and "frobnicate" in unknown and "/export list" in unknown
    assert "Usage" in bad and "does not exist" in missing


def test_app_home_lists_what_waits_for_me(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL)
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval")
    assert bot.event({"type": "app_home_opened", "user": "alice", "tab": "home"}).status_code == 200
    home = wait_for(lambda: slack.home.get("alice"), what="home for alice")
    text = json.dumps(home)
    assert "Waiting for your approval" in text and "#1" in text and "approve_task" in text
    bot.event({"type": "app_home_opened", "user": "dave", "tab": "home"})
    mine = json.dumps(wait_for(lambda: slack.home.get("dave"), what="home for dave"))
    assert "#1" in mine and "approve_task" not in mine and "cancel_task" in mine


def test_approve_from_app_home_refreshes_it(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL, executor="approver")
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval")
    home_view = {"id": "VHOME", "type": "home", "blocks": []}
    bot.click("alice", "approve_task", "1", view=home_view)
    home = wait_for(lambda: slack.home.get("alice"), what="home refresh")
    wait_for(lambda: "execute_task" in json.dumps(slack.home.get("alice")), what="execute in home")
    assert home
