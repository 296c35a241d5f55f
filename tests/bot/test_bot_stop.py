"""The Stop button on a running export's progress message, over real HTTP, real gRPC and the
Slack stand-in: the export stops, the message says who stopped it, no file is kept."""

from __future__ import annotations

from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from slack_standin import SlackStandIn

from service.domain.model import Encoding, RunStatus
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

# Counts for minutes on SQLite and returns nothing until done: only a stop ends it early.
SLOW = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500000000) "
    "SELECT count(*) AS c FROM n"
)


def stop_button(message) -> dict:
    return next(
        e
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "stop_run"
    )


def progress_message(slack: SlackStandIn, user: str):
    return wait_for(
        lambda: [m for m in slack.dm(user) if "exporting" in m.text], what="progress message"
    )[0]


def test_stop_on_the_progress_message_stops_the_export(
    bot: Bot, slack: SlackStandIn, service: Service
) -> None:
    bot.submit_export("dave", sql=SLOW)
    approval = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    bot.click("alice", "approve_task", "1", channel=approval.channel, ts=approval.ts)
    progress = progress_message(slack, "dave")
    button = stop_button(progress)
    assert button["value"] == "1" and button["confirm"]["confirm"]["text"] == "Stop it"

    # Someone who is neither the submitter nor an approver is told why not; it keeps running.
    bot.click("mallory", "stop_run", "1", channel=progress.channel, ts=progress.ts)
    wait_for(
        lambda: [c for c in slack.of("response_url") if "or an approver" in str(c.params)],
        what="refusal",
    )
    assert service.tasks.detail(1).task.status == pb.TASK_STATUS_EXECUTING

    answer = bot.click("dave", "stop_run", "1", channel=progress.channel, ts=progress.ts)
    assert answer.status_code == 200
    stopped = wait_for(
        lambda: [m for m in slack.dm("dave") if "was stopped" in m.text], what="stopped message"
    )[0]
    assert stopped.ts == progress.ts  # the same message, updated in place
    assert "canceled by dave" in str(stopped.blocks) and "stop_run" not in str(stopped.blocks)
    detail = service.tasks.detail(1)
    assert detail.task.status == pb.TASK_STATUS_CANCELED
    assert (detail.runs[0].status, detail.runs[0].error) == (RunStatus.CANCELED, "canceled by dave")
    assert detail.runs[0].object_key == ""


def test_the_form_offers_utf8_with_a_byte_order_mark(
    bot: Bot, slack: SlackStandIn, service: Service
) -> None:
    view = bot.open_form("dave")
    encoding = next(b for b in view["blocks"] if b.get("block_id") == "encoding")
    offered = [o["value"] for o in encoding["element"]["options"]]
    assert offered == ["utf8", "utf8-bom", "gbk"]
    bot.submit_export("dave", sql="SELECT 1 AS one", encoding="utf8-bom")
    wait_for(lambda: slack.of("response_url"), what="the confirmation")  # after the submit
    assert service.tasks.detail(1).task.spec.encoding == Encoding.UTF8_BOM
