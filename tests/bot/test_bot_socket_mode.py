"""Socket Mode: every kind of envelope acknowledged with its id within Slack's 3 seconds,
first deliveries and retries; the connection kept through a refresh, a reset socket and a
socket closed without a close frame, losing no click."""

from __future__ import annotations

import json
import time

import pytest
from bot_support import APPROVAL_CHANNEL, Bot, values_for, wait_for
from slack_standin import APP_TOKEN, SlackStandIn
from socket_mode_standin import ACK_DEADLINE_S

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = pytest.mark.parametrize("slack_mode", ["socket"])

SQL = "SELECT order_no, amount FROM orders ORDER BY id"
RECONNECT_WITHIN_S = 5.0
HOME = {"type": "app_home_opened", "user": "alice", "tab": "home"}


def test_every_kind_of_envelope_is_acked_with_its_id_in_time(bot: Bot, slack: SlackStandIn) -> None:
    view = bot.open_form("dave")  # a slash command
    home_view = {"id": "VHOME", "type": "home", "blocks": []}
    clicked = bot.click("dave", "refresh_home", "", view=home_view)  # a block action
    submitted = bot.submit_view(  # a view submission, answered with its field errors
        "dave", view, values_for({"datasource": "shop", "reason": "", "sql": ""})
    )
    home = bot.event(HOME)  # an event, first delivery: retry_attempt 0
    answers = [clicked, submitted, home]
    envelopes = [a.envelope for a in answers] + [slack.socket_mode.envelopes[0]]
    assert all(a.status_code == 200 for a in answers)
    assert {e.type for e in envelopes} == {"slash_commands", "interactive", "events_api"}
    for envelope in envelopes:
        assert envelope is not None and envelope.ack_s is not None
        assert envelope.ack_s < ACK_DEADLINE_S, (envelope.type, envelope.ack_s)
    assert not slack.socket_mode.stray_acks  # every ack named an envelope that was sent
    assert submitted.json()["response_action"] == "errors"
    assert home.envelope is not None and home.envelope.retry_attempt == 0


def test_a_first_delivery_of_an_event_is_handled_and_a_retry_is_not(
    bot: Bot, slack: SlackStandIn
) -> None:
    assert bot.event(HOME).status_code == 200  # retry_attempt 0: Slack's first delivery
    wait_for(lambda: slack.of("views.publish"), what="the home published")
    assert bot.event(HOME, retry=1).status_code == 200  # a real retry: acked, not redone
    time.sleep(0.3)
    assert len(slack.of("views.publish")) == 1


def approval_waiting(bot: Bot, slack: SlackStandIn):
    assert bot.submit_export("dave", sql=SQL).status_code == 200
    return wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]


@pytest.mark.parametrize("how", ["refresh_requested", "reset", "no_close_frame"])
def test_reconnects_mid_approval_and_loses_no_click(
    bot: Bot, slack: SlackStandIn, how: str
) -> None:
    msg = approval_waiting(bot, slack)
    socket_mode = slack.socket_mode
    greeted = len(socket_mode.hellos)
    dropped_at = time.monotonic()
    if how == "refresh_requested":
        socket_mode.refresh()
    else:
        socket_mode.drop(reset=how == "reset")
    # Clicked at once: Slack holds it until the app is connected again.
    click = bot.click("alice", "approve_task", "1", channel=msg.channel, ts=msg.ts)
    assert click.status_code == 200, "the click was not acknowledged within 3 s"
    assert socket_mode.wait_connections(greeted + 1, timeout=RECONNECT_WITHIN_S)
    assert socket_mode.hellos[greeted] - dropped_at < RECONNECT_WITHIN_S
    result = wait_for(lambda: [m for m in slack.dm("dave") if "is ready" in m.text], what="result")
    assert result
    assert bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_EXECUTE_SUCCESS
    # and the connection keeps working: another envelope is acked in time
    assert bot.command("dave", "list").status_code == 200


def test_reconnects_again_and_again(bot: Bot, slack: SlackStandIn) -> None:
    socket_mode = slack.socket_mode
    for i, how in enumerate(["reset", "no_close_frame", "refresh_requested"] * 2):
        greeted = len(socket_mode.hellos)
        if how == "refresh_requested":
            socket_mode.refresh()
        else:
            socket_mode.drop(reset=how == "reset")
        assert socket_mode.wait_connections(greeted + 1, timeout=RECONNECT_WITHIN_S), (i, how)
    assert bot.event(HOME).status_code == 200
    wait_for(lambda: slack.home.get("alice"), what="home after six reconnects")


def test_healthz_reports_whether_the_socket_is_connected(bot: Bot, slack: SlackStandIn) -> None:
    assert bot.healthz().status_code == 200
    socket_mode = slack.socket_mode
    # Slack cannot hand out a new connection for a while: the bot is not connected meanwhile
    slack.fail("apps.connections.open", "internal_error", times=1)
    greeted = len(socket_mode.hellos)
    socket_mode.drop(reset=True)
    down = wait_for(lambda: (r := bot.healthz()).status_code == 503 and r.text, what="unhealthy")
    assert "not connected" in down
    assert socket_mode.wait_connections(greeted + 1, timeout=15)
    wait_for(lambda: bot.healthz().status_code == 200, what="healthy again")
    assert bot.command("dave", "help").status_code == 200


def test_a_refused_app_token_is_named_by_healthz_until_it_works(
    bot: Bot, slack: SlackStandIn
) -> None:
    socket_mode = slack.socket_mode
    slack.revoke(APP_TOKEN, "token_revoked")  # the app-level token was revoked meanwhile
    greeted = len(socket_mode.hellos)
    socket_mode.drop(reset=False)
    down = wait_for(
        lambda: (r := bot.healthz()).status_code == 503 and "SLACK_APP_TOKEN" in r.text and r.text,
        what="the refused token named",
    )
    assert "token_revoked" in down and APP_TOKEN not in down
    slack.restore(APP_TOKEN)  # a new token, in the real world
    assert socket_mode.wait_connections(greeted + 1, timeout=15)
    wait_for(lambda: bot.healthz().status_code == 200, what="healthy again")


def test_slash_command_text_reaches_the_listener_unchanged(bot: Bot, slack: SlackStandIn) -> None:
    assert bot.command("dave", "show 42").status_code == 200
    reply = wait_for(lambda: slack.of("response_url"), what="reply")[0]
    assert "does not exist" in json.dumps(reply.params)
