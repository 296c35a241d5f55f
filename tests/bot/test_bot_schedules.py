"""Scheduled exports in Slack: the form's schedule, each run posted to its channel with its
link (or to its owner when it has none), failures told to the owner too, `/export schedules`
with next run and Cancel.

The scheduler's thread is off; a controllable clock drives its real tick, and the bot
delivers what the service recorded through the Slack stand-in.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from fake_clock import Clock
from slack_standin import SlackStandIn

from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

SQL = "SELECT order_no, amount FROM orders WHERE paid = 1 ORDER BY id"
FINANCE = "CFINANCE"


def schedule_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "sql": SQL,
        "schedule": True,
        "cron": "* * * * *",
        "timezone": "Asia/Shanghai",
        "channel": FINANCE,
    } | overrides


def links(message: Any) -> list[str]:
    return [
        e["url"]
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("url")
    ]


def approve_first(bot: Bot, slack: SlackStandIn) -> None:
    msg = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    assert "Next runs:" in str(msg.blocks)
    assert (
        bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts).status_code == 200
    )
    wait_for(
        lambda: bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_APPROVED,
        what="approved",
    )


def approved_schedule(
    start_service, make_bot, slack: SlackStandIn, **fields: Any
) -> tuple[Clock, Service, Bot]:
    """A schedule submitted by dave through the form and approved by alice's click."""
    clock = Clock()
    service: Service = start_service(clock=clock)
    bot = make_bot(service)
    assert bot.submit_export("dave", **schedule_fields(**fields)).status_code == 200
    approve_first(bot, slack)
    return clock, service, bot


def test_each_firing_is_posted_to_the_schedules_channel_with_its_link(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock, service, _bot = approved_schedule(start_service, make_bot, slack)

    for n in (1, 2):
        clock.to_next_minute()
        assert len(service.scheduler.tick()) == 1
        done = wait_for(
            lambda n=n: [m for m in slack.in_channel(FINANCE) if links(m)][n - 1 :],
            what=f"run {n} in the channel",
        )
        body = requests.get(links(done[0])[0], timeout=10).text
        assert body.splitlines()[0] == "order_no,amount" and len(body.splitlines()) == 7
    time.sleep(0.3)
    assert len(slack.in_channel(FINANCE)) == 2  # one message per run, updated in place
    assert not [m for m in slack.dm("dave") if "failed" in m.text]


def test_a_schedule_without_a_channel_sends_each_run_to_its_owner(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock = Clock()
    service: Service = start_service(clock=clock)
    bot = make_bot(service)
    request = pb.SubmitTaskRequest(  # as the CLI submits it: --cron without --channel
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(export_reason="daily", ebs=pb.ExportBySQL(statement=SQL)),
        schedule=pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *", timezone="UTC"),
    )
    assert bot.service.submit("dave", request).ok
    approve_first(bot, slack)
    clock.to_next_minute()
    assert len(service.scheduler.tick()) == 1

    told = wait_for(lambda: [m for m in slack.dm("dave") if links(m)], what="the run to dave")
    body = requests.get(links(told[0])[0], timeout=10).text
    assert body.splitlines()[0] == "order_no,amount" and len(body.splitlines()) == 7
    time.sleep(0.3)
    assert len([m for m in slack.dm("dave") if links(m)]) == 1  # once, not also as a problem


def test_a_failed_scheduled_run_is_told_to_the_channel_and_its_owner(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock, service, _bot = approved_schedule(
        start_service, make_bot, slack, sql="SELECT * FROM refunds"
    )  # no such table: fails when it runs
    clock.to_next_minute()
    assert len(service.scheduler.tick()) == 1

    in_channel = wait_for(
        lambda: [m for m in slack.in_channel(FINANCE) if "Failed" in str(m.blocks)],
        what="failure in the channel",
    )
    told = wait_for(
        lambda: [m for m in slack.dm("dave") if "Failed" in str(m.blocks)], what="failure DM"
    )
    assert "refunds" in str(in_channel[0].blocks) and "refunds" in str(told[0].blocks)


def test_schedules_lists_next_run_and_cancel_stops_it(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock, service, bot = approved_schedule(start_service, make_bot, slack)

    before = len(slack.of("response_url"))
    assert bot.command("dave", "schedules").status_code == 200
    listing = wait_for(lambda: slack.of("response_url")[before:], what="schedules")[0]
    text = str(listing.params["blocks"])
    assert "#1" in text and "Next run: <!date^" in text and f"<#{FINANCE}>" in text
    cancel = [
        b["accessory"]
        for b in listing.params["blocks"]
        if b.get("accessory", {}).get("action_id") == "cancel_task"
    ]
    assert cancel and cancel[0]["value"] == "1" and "confirm" in cancel[0]

    # Someone else sees the schedule but gets no Cancel button.
    before = len(slack.of("response_url"))
    assert bot.command("alice", "schedules").status_code == 200
    other = wait_for(lambda: slack.of("response_url")[before:], what="alice's schedules")[0]
    assert "#1" in str(other.params["blocks"]) and "cancel_task" not in str(other.params)

    assert bot.click("dave", "cancel_task", "1").status_code == 200
    wait_for(
        lambda: bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_CANCELED,
        what="canceled",
    )
    clock.to_next_minute()
    assert service.scheduler.tick() == []
    time.sleep(0.3)
    assert not slack.in_channel(FINANCE)


def test_a_bad_schedule_is_shown_on_its_field(start_service, make_bot, slack) -> None:
    bot = make_bot(start_service(clock=Clock()))
    for fields, block, words in [
        (schedule_fields(cron="0 9 * *"), "cron", "has 4 fields"),
        (schedule_fields(cron="0 9 * * 8"), "cron", "out of range"),
        (schedule_fields(timezone="Asia/Beijing"), "timezone", "IANA"),
        (schedule_fields(channel=""), "channel", "channel"),
    ]:
        resp = bot.submit_export("dave", **fields)
        assert resp.status_code == 200
        answer = resp.json()
        assert answer["response_action"] == "errors", answer
        assert words in answer["errors"][block], answer


def test_a_channel_the_bot_is_not_in_gets_the_result_to_the_owner_instead(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock, service, _bot = approved_schedule(start_service, make_bot, slack)
    slack.fail(
        "chat.postMessage", "not_in_channel", times=100, when=lambda p: p["channel"] == FINANCE
    )
    clock.to_next_minute()
    assert len(service.scheduler.tick()) == 1

    told = wait_for(lambda: [m for m in slack.dm("dave") if links(m)], what="result to dave")
    assert "not a member of that channel" in str(told[0].blocks)
    assert "/invite" in str(told[0].blocks)
    time.sleep(0.5)
    assert len([m for m in slack.dm("dave") if "scheduled export" in str(m.blocks)]) == 1


def test_a_small_scheduled_result_is_also_uploaded_to_the_channel_once(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock, service, _bot = approved_schedule(start_service, make_bot, slack)
    clock.to_next_minute()
    assert len(service.scheduler.tick()) == 1

    wait_for(lambda: slack.files, what="the file shared")
    posted = wait_for(lambda: [m for m in slack.in_channel(FINANCE) if links(m)], what="link")
    shared = slack.files[0]
    assert shared["channel"] == FINANCE and shared["title"].endswith(".csv")
    content = slack.uploads[shared["id"]]
    assert content == requests.get(links(posted[0])[0], timeout=10).content
    assert content.decode("utf-8-sig").splitlines()[0] == "order_no,amount"
    time.sleep(0.5)
    assert len(slack.files) == 1


def test_no_upload_where_the_workspace_refuses_it_and_the_link_still_comes(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    slack.fail("files.getUploadURLExternal", "missing_scope", times=10)
    clock, service, _bot = approved_schedule(start_service, make_bot, slack)
    clock.to_next_minute()
    assert len(service.scheduler.tick()) == 1

    wait_for(lambda: [m for m in slack.in_channel(FINANCE) if links(m)], what="link")
    wait_for(lambda: slack.of("files.getUploadURLExternal"), what="the upload tried")
    time.sleep(0.5)
    assert not slack.files and len(slack.of("files.getUploadURLExternal")) == 1
