"""An import from Slack end to end: the request modal's import choice with a file, the bot
fetching the file with its token, the approval message with the preview, the result with the
counts — real Bolt app, real service, real PostgreSQL, the Slack stand-in."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from block_limits import check_payload
from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from import_support import Target
from slack_standin import SlackStandIn

from service.server import Service

pytestmark = pytest.mark.postgres

CODES = "code,discount,note\r\nA1,2.50,spring 春季\r\nB2,3,\r\n"


def import_form(bot: Bot, user: str) -> dict:
    view = bot.form_for(user, "import", "New import")
    file_block = next(b for b in view["blocks"] if b.get("block_id") == "file")
    assert file_block["element"]["type"] == "file_input"
    assert file_block["element"]["filetypes"] == ["csv", "xlsx"]
    return view


def values(table: str, file_id: str, name: str, mode: str = "upsert") -> dict:
    def select(v: str) -> dict:
        return {"type": "static_select", "selected_option": {"value": v}}

    return {
        "datasource": {"datasource": select("shop")},
        "table": {"table": {"type": "plain_text_input", "value": table}},
        "file": {"file": {"type": "file_input", "files": [{"id": file_id, "name": name}]}},
        "import_mode": {"import_mode": select(mode)},
        "encoding": {"encoding": select("utf8")},
        "reason": {"reason": {"type": "plain_text_input", "value": "codes for May"}},
        "executor": {"executor": select("auto")},
    }


def test_import_from_the_modal_to_the_counts(
    target: Target,
    start_service: Callable[..., Service],
    make_bot: Callable[..., Bot],
    slack: SlackStandIn,
) -> None:
    target.insert("('A1', 1.00, NULL, 'old')")
    service = start_service(**target.datasource())
    bot = make_bot(service)
    view = import_form(bot, "dave")
    file_id = slack.add_file("codes.csv", CODES.encode())

    resp = bot.submit_view("dave", view, values(target.table, file_id, "codes.csv"))
    assert resp.status_code == 200 and resp.json()["response_action"] == "update"
    assert slack.of("files.info", file=file_id) and slack.of("file_download", file=file_id)

    approval = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    text = str(approval.blocks)
    assert "Import request #1" in text and f"`{target.table}`" in text
    assert "update existing keys" in text and "codes.csv" in text
    assert "A1" in text and "spring 春季" in text and "SHA-256" in text
    assert "Columns: code, discount, note" in text
    assert not check_payload("chat.postMessage", {"blocks": approval.blocks, "text": approval.text})
    submitted = wait_for(lambda: slack.views[view["id"]]["title"]["text"] == "Submitted" and 1)
    assert submitted

    bot.click("alice", "approve_task", "1", channel=approval.channel, ts=approval.ts)
    result = wait_for(
        lambda: [m for m in slack.dm("dave") if "Import #1 is done" in m.text], what="result"
    )[0]
    assert "1 written, 0 skipped, 1 updated" in result.text
    assert "Replaced rows saved" in str(result.blocks)
    assert target.rows() == [
        ("A1", Decimal("2.50"), None, "spring 春季"),
        ("B2", Decimal("3.00"), None, None),
    ]

    bot.command("dave", "show 1")
    shown = wait_for(
        lambda: [c for c in slack.of("response_url") if "Import #1" in str(c.params)],
        what="/export show",
    )
    assert "1 written, 0 skipped, 1 updated" in str(shown[0].params)


def test_a_file_that_fails_the_precheck_says_why_in_the_modal(
    target: Target,
    start_service: Callable[..., Service],
    make_bot: Callable[..., Bot],
    slack: SlackStandIn,
) -> None:
    service = start_service(**target.datasource())
    bot = make_bot(service, delivery=False)
    view = import_form(bot, "dave")
    file_id = slack.add_file("codes.csv", b"code,discount\r\nA1,lots\r\n")
    bot.submit_view("dave", view, values(target.table, file_id, "codes.csv", "insert"))
    failed = wait_for(
        lambda: (
            slack.views[view["id"]]["title"]["text"] == "Pre-check failed"
            and slack.views[view["id"]]
        ),
        what="the pre-check's answer",
    )
    assert "row 2, column discount: 'lots' is not a number" in str(failed["blocks"])
    assert target.rows() == []
