"""The whole flow in both modes (signed HTTP, Socket Mode), real gRPC, the Slack stand-in."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from bot_support import APPROVAL_CHANNEL, MODES, Bot, wait_for
from slack_standin import SlackStandIn

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.parametrize("slack_mode", MODES)

SQL = "SELECT order_no, amount FROM orders ORDER BY id"


def approval_message(slack: SlackStandIn):
    return wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]


def test_auto_export_from_form_to_download_link(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.submit_export("dave", sql=SQL)
    assert resp.status_code == 200
    confirm = wait_for(lambda: slack.of("response_url"), what="confirmation")
    assert "#1" in confirm[0].params["text"]

    msg = approval_message(slack)
    buttons = [e for b in msg.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["approve_task", "reject_task"]
    assert (
        bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts).status_code == 200
    )

    result = wait_for(
        lambda: [m for m in slack.dm("dave") if "rows" in m.text and "ready" in m.text],
        what="result",
    )
    url = next(
        e["url"]
        for b in result[0].blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("url")
    )
    body = requests.get(url, timeout=10).text
    assert body.splitlines()[0] == "order_no,amount"
    msg = slack.in_channel(APPROVAL_CHANNEL)[0]
    assert not [b for b in msg.blocks if b["type"] == "actions"]
    assert "Approved" in str(msg.blocks)


def actions_of(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def download_url(message) -> str:
    return next(e["url"] for e in actions_of(message.blocks) if e.get("url"))


def result_dm(slack: SlackStandIn, user: str):
    return wait_for(
        lambda: [m for m in slack.dm(user) if "is ready" in m.text or "failed" in m.text],
        what=f"result for {user}",
    )


@pytest.mark.parametrize("mode, executor", [("committer", "dave"), ("approver", "alice")])
def test_manual_executor_gets_an_execute_button(
    bot: Bot, slack: SlackStandIn, mode: str, executor: str
) -> None:
    assert bot.submit_export("dave", sql=SQL, executor=mode).status_code == 200
    msg = approval_message(slack)
    bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts)

    prompt = wait_for(
        lambda: [
            m
            for m in slack.dm(executor)
            if any(e["action_id"] == "execute_task" for e in actions_of(m.blocks))
        ],
        what="execute prompt",
    )[0]
    if mode == "committer":  # the approver is not the one to run it
        assert not [m for m in slack.dm("alice") if "execute_task" in str(m.blocks)]
    assert (
        bot.click(executor, "execute_task", "1", channel=prompt.channel, ts=prompt.ts).status_code
        == 200
    )

    result = result_dm(slack, "dave")[0]
    assert requests.get(download_url(result), timeout=10).text.startswith("order_no,amount")
    # the prompt lost its button and says who started the run
    wait_for(
        lambda: "execute_task" not in str(slack.messages[(prompt.channel, prompt.ts)].blocks),
        what="prompt update",
    )
    assert len(slack.of("chat.postMessage", channel=APPROVAL_CHANNEL)) == 1


def test_reject_asks_for_a_reason_and_tells_the_requester(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL)
    msg = approval_message(slack)
    assert bot.click("bob", "reject_task", "1", channel=msg.channel, ts=msg.ts).status_code == 200
    opened = wait_for(
        lambda: [
            c
            for c in slack.of("views.open")
            if c.params["view"].get("callback_id") == "reject_reason"
        ],
        what="reason modal",
    )
    view = slack.views[sorted(slack.views, key=lambda v: int(v[1:]))[-1]]
    assert opened and view["callback_id"] == "reject_reason"
    resp = bot.submit_view(
        "bob",
        view,
        {"reason": {"reason_input": {"type": "plain_text_input", "value": "too much PII"}}},
    )
    assert resp.status_code == 200

    wait_for(
        lambda: "Rejected" in str(slack.messages[(msg.channel, msg.ts)].blocks),
        what="rejected message",
    )
    blocks = slack.messages[(msg.channel, msg.ts)].blocks
    assert not actions_of(blocks)
    assert "too much PII" in str(blocks) and "<@bob>" in str(blocks)
    assert "[via" not in str(blocks)  # the service records the bot; Slack shows bob's words
    decision = wait_for(
        lambda: [m for m in slack.dm("dave") if "Rejected" in str(m.blocks)], what="decision DM"
    )
    assert "too much PII" in str(decision[0].blocks)


def test_reject_click_by_a_non_approver_opens_nothing(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL)
    msg = approval_message(slack)
    bot.click("mallory", "reject_task", "1", channel=msg.channel, ts=msg.ts)
    reply = wait_for(lambda: slack.of("response_url")[1:], what="explanation")
    assert reply[0].params["response_type"] == "ephemeral"
    assert not [
        c for c in slack.of("views.open") if c.params["view"].get("callback_id") == "reject_reason"
    ]


@pytest.mark.parametrize("clicker", ["mallory", "dave"])
def test_click_by_non_approver_or_submitter_changes_nothing(
    bot: Bot, slack: SlackStandIn, clicker: str
) -> None:
    bot.submit_export("dave", sql=SQL)
    msg = approval_message(slack)
    before = len(slack.of("response_url"))
    assert (
        bot.click(clicker, "approve_task", "1", channel=msg.channel, ts=msg.ts).status_code == 200
    )
    reply = wait_for(lambda: slack.of("response_url")[before:], what="ephemeral explanation")[0]
    assert (
        reply.params["response_type"] == "ephemeral" and reply.params["replace_original"] is False
    )
    assert "can't" in reply.params["text"].lower() or "not" in reply.params["text"].lower()
    time.sleep(0.5)
    assert slack.messages[(msg.channel, msg.ts)].updates == 0
    assert bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_APPROVING


def test_double_click_on_approve_counts_once(start_service, make_bot, slack: SlackStandIn) -> None:
    bot = make_bot(start_service(required_approvals=2))
    bot.submit_export("dave", sql=SQL)
    msg = approval_message(slack)
    before = len(slack.of("response_url"))
    with ThreadPoolExecutor(2) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    bot.click(
                        "alice", "approve_task", "1", channel=msg.channel, ts=msg.ts
                    ).status_code
                ),
                range(2),
            )
        )
    assert codes == [200, 200]
    reply = wait_for(lambda: slack.of("response_url")[before:], what="second click explained")
    assert "already approved" in reply[0].params["text"]
    wait_for(
        lambda: "1 of 2" in str(slack.messages[(msg.channel, msg.ts)].blocks), what="vote shown"
    )
    blocks = slack.messages[(msg.channel, msg.ts)].blocks
    assert str(blocks).count("<@alice> approved") == 1
    assert [e["action_id"] for e in actions_of(blocks)] == ["approve_task", "reject_task"]
    assert bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_APPROVING


def test_longest_sql_the_form_takes_is_shown_safely_with_the_full_text_behind_a_button(
    bot: Bot, slack: SlackStandIn
) -> None:
    comment = ("<@U1> & `x` " * 400)[:2950]
    sql = f"SELECT order_no /* {comment} */ FROM orders"[:3000]
    assert bot.submit_export("dave", sql=sql, reason="r & <why> " * 300).status_code == 200
    msg = approval_message(slack)
    assert "<@U1>" not in str(msg.blocks)
    assert "show_sql" in [e["action_id"] for e in actions_of(msg.blocks)]
    bot.click("alice", "show_sql", "1", channel=msg.channel, ts=msg.ts)
    opened = wait_for(
        lambda: [
            c for c in slack.of("views.open") if "SQL of #1" in str(c.params["view"].get("title"))
        ],
        what="full SQL modal",
    )
    assert "FROM orders" in str(opened[0].params["view"]["blocks"])


def test_a_long_export_shows_progress_in_one_message_then_the_link(
    bot: Bot, slack: SlackStandIn
) -> None:
    sql = (
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 600000) "
        "SELECT x, 'row ' || x AS label FROM n"
    )
    bot.submit_export("dave", sql=sql)
    msg = approval_message(slack)
    bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts)
    result = result_dm(slack, "dave")[0]
    assert "is ready" in result.text and "600,000" in result.text
    run_posts = [
        c for c in slack.of("chat.postMessage") if c.ok and "· run 1" in str(c.params["blocks"])
    ]
    assert len(run_posts) == 1, [
        (c.params["text"], c.params["channel"]) for c in slack.of("chat.postMessage")
    ]
    updates = [c for c in slack.of("chat.update", channel=result.channel, ts=result.ts)]
    assert any("rows so far" in c.params["text"] for c in updates), [
        c.params["text"] for c in updates
    ]
    assert "is ready" in updates[-1].params["text"]


def test_an_expired_link_is_renewed_in_place(bot: Bot, slack: SlackStandIn) -> None:
    bot.submit_export("dave", sql=SQL)
    msg = approval_message(slack)
    bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts)
    result = result_dm(slack, "dave")[0]
    key = (result.channel, result.ts)
    time.sleep(1.1)  # the delivery has settled, and links are signed to the second
    first_url = download_url(slack.messages[key])
    renew = next(e for e in actions_of(result.blocks) if e["action_id"] == "renew_link")
    bot.click("dave", "renew_link", renew["value"], channel=result.channel, ts=result.ts)
    renewed = wait_for(
        lambda: download_url(slack.messages[key]) != first_url and slack.messages[key],
        what="renewed link",
    )
    assert "is ready" in renewed.text
    assert requests.get(download_url(renewed), timeout=10).status_code == 200


@pytest.mark.postgres
def test_approvers_see_the_databases_row_estimate(
    start_service, make_bot, slack: SlackStandIn, fresh_pg_url
) -> None:
    engine = sa.create_engine(fresh_pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bot_orders (id int, amount int)")
        conn.exec_driver_sql("INSERT INTO bot_orders SELECT g, g FROM generate_series(1, 500) g")
        conn.exec_driver_sql("ANALYZE bot_orders")
    engine.dispose()
    url = fresh_pg_url.render_as_string(hide_password=False)
    bot = make_bot(start_service(url=url, allow_privileged_reader=True))  # the test's superuser
    bot.submit_export("dave", sql="SELECT id, amount FROM bot_orders")
    text = str(approval_message(slack).blocks)
    assert "Rows: about 500 row(s), by the database's plan" in text
