"""Listeners are plain module-level functions: callable alone, with Bolt's own ack and
respond, the real service behind them and the Slack stand-in in front."""

from __future__ import annotations

from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from slack_bolt import Ack, Respond
from slack_standin import SlackStandIn

from bot.app import DatasourceCache, Deps
from bot.listeners import actions, events
from woxqaq.v1 import task_service_pb2 as pb


def deps_of(bot: Bot) -> Deps:
    return Deps(bot.settings, bot.service, DatasourceCache(bot.service))


def test_home_opened_called_alone_publishes_the_home(bot: Bot, slack: SlackStandIn) -> None:
    events.home_opened(
        event={"type": "app_home_opened", "user": "alice", "tab": "home"},
        client=bot.client,
        deps=deps_of(bot),
    )
    assert slack.home["alice"]["type"] == "home"


def test_approve_called_alone_acks_then_approves(bot: Bot, slack: SlackStandIn) -> None:
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1"), export_reason="r"),
    )
    task_id = bot.service.submit("dave", req).task_id
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")
    ack = Ack()
    actions.approve(
        ack=ack,
        body={"user": {"id": "alice"}, "container": {"type": "message"}},
        action={"action_id": "approve_task", "value": task_id},
        client=bot.client,
        respond=Respond(response_url=None),
        deps=deps_of(bot),
    )
    assert ack.response is not None and ack.response.status == 200
    assert bot.service.detail("dave", task_id).task.status != pb.TASK_STATUS_APPROVING


def test_an_edited_button_value_called_alone_is_told_not_raised(
    bot: Bot, slack: SlackStandIn
) -> None:
    actions.cancel(
        ack=Ack(),
        body={"user": {"id": "dave"}},
        action={"action_id": "cancel_task", "value": "not-a-task"},
        client=bot.client,
        respond=Respond(response_url=None),
        deps=deps_of(bot),
    )
    assert any(actions.EDITED in m.text for m in slack.dm("dave"))
