"""Test data from Slack end to end: the request modal's "Generate test data" choice with one
rule per line, the approval message with the generators and the first rows, the result with
the counts — real Bolt app, real service, real PostgreSQL, the Slack stand-in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from block_limits import check_payload
from bot_support import APPROVAL_CHANNEL, Bot, values_for, wait_for
from import_support import Target
from slack_standin import SlackStandIn

from service.server import Service

pytestmark = pytest.mark.postgres

RULES = "code: sequence 1\ndiscount: decimal 1 9.99 2\nnote: null 0.5"


def generate_form(bot: Bot, user: str) -> dict:
    view = bot.form_for(user, "generate", "New test data")
    rules = next(b for b in view["blocks"] if b.get("block_id") == "rules")
    assert rules["element"]["multiline"] is True
    return view


def values(table: str, rules: str = RULES, rows: str = "50") -> dict:
    fields = {
        "datasource": "shop",
        "table": table,
        "rows": rows,
        "rules": rules,
        "seed": "",
        "import_mode": "insert",
        "reason": "load test of the promo page",
        "executor": "auto",
    }
    out = values_for(fields)
    out["import_mode"] = {
        "import_mode": {"type": "static_select", "selected_option": {"value": "insert"}}
    }
    return out


def test_generation_from_the_modal_to_the_counts(
    target: Target,
    start_service: Callable[..., Service],
    make_bot: Callable[..., Bot],
    slack: SlackStandIn,
) -> None:
    service = start_service(**target.datasource(allow_generate=True))
    bot = make_bot(service)
    view = generate_form(bot, "dave")

    resp = bot.submit_view("dave", view, values(target.table))
    assert resp.status_code == 200

    approval = wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request")[0]
    text = str(approval.blocks)
    assert "Test-data request #1" in text and f"`{target.table}`" in text
    assert "code: sequence start=1" in text
    assert "discount: decimal min=1 max=9.99 scale=2" in text
    assert "valid_until: date start=" in text  # proposed, and shown
    assert "note: faker provider=sentence null 0.5" in text
    assert "code | discount | valid_until | note" in text  # the first rows, as written
    assert "… 45 more rows" in text
    assert not check_payload("chat.postMessage", {"blocks": approval.blocks, "text": approval.text})

    bot.click("alice", "approve_task", "1", channel=approval.channel, ts=approval.ts)
    result = wait_for(
        lambda: [m for m in slack.dm("dave") if "Generation #1 is done" in m.text], what="result"
    )[0]
    assert "50 written, 0 skipped, 0 updated" in result.text
    rows = target.rows()
    assert len(rows) == 50 and {r[0] for r in rows} == {str(i) for i in range(1, 51)}

    bot.command("dave", "show 1")
    shown = wait_for(
        lambda: [c for c in slack.of("response_url") if "Generation #1" in str(c.params)],
        what="/export show",
    )
    assert "50 written, 0 skipped, 0 updated" in str(shown[0].params)
    assert "code: sequence start=1" in str(shown[0].params)


def test_a_bad_rule_is_shown_on_its_field_and_a_refused_datasource_in_the_modal(
    target: Target,
    start_service: Callable[..., Service],
    make_bot: Callable[..., Bot],
    slack: SlackStandIn,
) -> None:
    service = start_service(**target.datasource())  # allow_generate is off
    bot = make_bot(service, delivery=False)
    view = generate_form(bot, "dave")

    resp = bot.submit_view("dave", view, values(target.table, rules="code sequence"))
    assert resp.json()["response_action"] == "errors"
    assert resp.json()["errors"]["rules"].startswith("rule 1: `code sequence` is not a rule")

    resp = bot.submit_view("dave", view, values(target.table))
    if resp.json().get("response_action") == "errors":  # the pre-check answered in time
        failed: object = resp.json()["errors"]["table"]
    else:  # a slow pre-check: the form is updated with its answer
        failed = wait_for(
            lambda: (
                slack.views[view["id"]]["title"]["text"] == "Pre-check failed"
                and slack.views[view["id"]]["blocks"]
            ),
            what="the pre-check's answer",
        )
    assert "set datasources.shop.allow_generate = true" in str(failed)
    assert target.rows() == []
