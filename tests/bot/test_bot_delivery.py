"""Delivering the outbox: at least once, each message posted once, problems reported."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from slack_standin import SlackStandIn

from bot.service_client import ServiceClient
from service.app.outbox import Outbox
from service.domain.model import MessageRef
from service.server import Service
from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import task_service_pb2 as pb

SQL = "SELECT order_no, amount FROM orders"


def status(bot: Bot, task_id: str = "1") -> int:
    return bot.service.detail("dave", task_id).task.status


def test_bot_restart_between_submit_and_result_loses_and_doubles_nothing(
    make_bot, slack: SlackStandIn
) -> None:
    first = make_bot()
    first.submit_export("dave", sql=SQL)
    msg = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval")[0]
    first.stop()  # the whole bot goes: HTTP endpoint and delivery loop

    # meanwhile the approver approves (another front end) and the export finishes
    svc = ServiceClient(first.service_addr, first.service_token)
    svc.approve("alice", 1)
    wait_for(
        lambda: svc.detail("dave", "1").task.status == pb.TASK_STATUS_EXECUTE_SUCCESS,
        what="export done",
    )
    svc.close()
    assert not [m for m in slack.dm("dave") if "ready" in m.text]

    second = make_bot()
    result = wait_for(
        lambda: [m for m in slack.dm("dave") if "is ready" in m.text], what="result after restart"
    )
    time.sleep(0.5)  # give a duplicate the chance to show up
    assert len(result) == 1
    assert len(slack.of("chat.postMessage", channel=APPROVAL_CHANNEL)) == 1
    assert "Approved" in str(slack.messages[(msg.channel, msg.ts)].blocks)
    posted = [c for c in slack.of("chat.postMessage") if c.ok]
    assert len(posted) == len({(c.params["channel"], c.params["text"]) for c in posted})
    url = next(
        e["url"]
        for b in result[0].blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("url")
    )
    assert requests.get(url, timeout=10).status_code == 200
    assert second.delivery is not None


def test_redelivery_after_a_crash_updates_instead_of_posting(make_bot, slack: SlackStandIn) -> None:
    bot = make_bot(delivery=False)
    bot.submit_export("dave", sql=SQL)
    # A consumer leases the approval request, posts it and records the message, then dies
    # before its ack.
    [n] = bot.service.pull("doomed", 1, 5)
    posted = bot.client.chat_postMessage(channel=APPROVAL_CHANNEL, text="first attempt")
    ref = npb.MessageRef(channel=posted["channel"], ts=posted["ts"], purpose="approval")
    bot.service.save_refs("1", [ref])
    assert bot.service.pull("other", 5, 5) == []  # leased: nobody else takes it meanwhile

    bot.start_delivery()  # takes it over once the lease lapses (5 s)
    key = (posted["channel"], posted["ts"])
    wait_for(lambda: slack.messages[key].updates == 1, timeout=15, what="update after lease")
    assert "approve_task" in str(slack.messages[key].blocks)
    assert (
        len(slack.of("chat.postMessage", channel=APPROVAL_CHANNEL)) == 1
    )  # the first attempt only
    assert bot.service.ack(n.id, "doomed", delivered=True) is False  # its lease is gone


def test_unknown_approval_channel_is_reported_to_the_requester(
    bot: Bot, slack: SlackStandIn
) -> None:
    slack.fail(
        "chat.postMessage", "channel_not_found", when=lambda p: p.get("channel") == APPROVAL_CHANNEL
    )
    bot.submit_export("dave", sql=SQL)
    dm = wait_for(
        lambda: [m for m in slack.dm("dave") if "couldn't post" in str(m.blocks)], what="problem DM"
    )
    assert "channel does not exist" in str(dm[0].blocks)
    assert "cancel_task" in str(dm[0].blocks)
    # the next notification of the task (a vote) still flows; the report is not repeated
    bot.service.approve("alice", 1)
    wait_for(
        lambda: [m for m in slack.dm("dave") if "Approved" in str(m.blocks)], what="decision DM"
    )
    assert len([m for m in slack.dm("dave") if "couldn't post" in str(m.blocks)]) == 1


def test_not_in_channel_is_reported_too(bot: Bot, slack: SlackStandIn) -> None:
    slack.fail(
        "chat.postMessage", "not_in_channel", when=lambda p: p.get("channel") == APPROVAL_CHANNEL
    )
    bot.submit_export("dave", sql=SQL)
    dm = wait_for(
        lambda: [m for m in slack.dm("dave") if "couldn't post" in str(m.blocks)], what="problem DM"
    )
    assert "not a member" in str(dm[0].blocks)


def test_rate_limited_post_waits_for_retry_after_and_posts_once(
    bot: Bot, slack: SlackStandIn
) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1, times=2)
    started = time.monotonic()
    bot.submit_export("dave", sql=SQL)
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval after 429s")
    assert time.monotonic() - started >= 2.0
    limited = [c for c in slack.of("chat.postMessage") if c.status == 429]
    assert len(limited) == 2
    assert len(slack.in_channel(APPROVAL_CHANNEL)) == 1


def test_a_failing_delivery_is_retried_later_not_dropped(bot: Bot, slack: SlackStandIn) -> None:
    slack.fail("chat.postMessage", "internal_error", times=1)
    bot.submit_export("dave", sql=SQL)
    wait_for(
        lambda: slack.in_channel(APPROVAL_CHANNEL), timeout=20, what="approval after a failure"
    )
    assert [c.error for c in slack.of("chat.postMessage")][:1] == ["internal_error"]
    assert len(slack.in_channel(APPROVAL_CHANNEL)) == 1


# -- the outbox itself ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def outbox_bot(make_bot) -> Bot:
    return make_bot(delivery=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store_service(request: pytest.FixtureRequest, start_service) -> Service:
    """The service on each task store: SQLite, and the machine's PostgreSQL."""
    if request.param == "sqlite":
        return start_service()
    url = request.getfixturevalue("fresh_pg_url").render_as_string(hide_password=False)
    return start_service(store_url=url)


def test_two_consumers_never_take_the_same_notification(
    make_bot, any_store_service: Service
) -> None:
    service = any_store_service
    outbox_bot = make_bot(service, delivery=False)
    for i in range(6):
        outbox_bot.service.submit(
            "dave",
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="shop",
                ded=pb.DataExportDetail(
                    ebs=pb.ExportBySQL(statement=f"{SQL} WHERE id > {i}"), export_reason="r"
                ),
            ),
        )
    a = Outbox(service.store, service.registry)
    b = Outbox(service.store, service.registry)
    with ThreadPoolExecutor(2) as pool:
        got_a, got_b = pool.map(
            lambda box_name: box_name[0].pull(box_name[1], 10, 30), [(a, "a"), (b, "b")]
        )
    ids_a, ids_b = {p.id for p in got_a}, {p.id for p in got_b}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 6


def test_lease_lapses_and_failures_back_off(outbox_bot: Bot, service: Service) -> None:
    outbox_bot.submit_export("dave", sql=SQL)
    clock = Clock()
    box = Outbox(service.store, service.registry, clock=clock)
    [n] = box.pull("a", 5, 60)
    assert box.pull("b", 5, 60) == []
    clock.now += timedelta(seconds=61)
    [again] = box.pull("b", 5, 60)
    assert again.id == n.id
    assert box.ack(n.id, "a", delivered=True) is False  # a lost its lease to b
    assert box.ack(n.id, "b", delivered=False, error="slack down") is True
    assert box.pull("b", 5, 60) == []  # backing off
    clock.now += timedelta(seconds=3)
    [third] = box.pull("b", 5, 60)
    assert third.attempts == 1
    assert box.ack(third.id, "b", delivered=True, refs=[MessageRef("C1", "1.2", "approval")])
    assert box.pull("b", 5, 60) == []


def test_a_tasks_notifications_come_in_order(outbox_bot: Bot, service: Service) -> None:
    outbox_bot.submit_export("dave", sql=SQL)
    outbox_bot.service.approve("alice", 1)
    wait_for(lambda: status(outbox_bot) == pb.TASK_STATUS_EXECUTE_SUCCESS, what="export")
    box = Outbox(service.store, service.registry)
    kinds = []
    while batch := box.pull("a", 10, 60):
        assert len(batch) == 1  # one task: one at a time
        kinds.append(batch[0].kind)
        box.ack(batch[0].id, "a", delivered=True)
    assert kinds == ["approval_requested", "approved", "run_started", "run_finished"]
