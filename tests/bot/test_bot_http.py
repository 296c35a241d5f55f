"""HTTP mode: Bolt's WSGI adapter under waitress checks Slack's signatures; /healthz."""

from __future__ import annotations

import time

from bot_support import Bot
from slack_standin import SlackStandIn


def test_forged_signature_is_refused(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.command("dave", secret="not-the-secret")
    assert resp.status_code == 401
    time.sleep(0.2)
    assert not slack.of("views.open")


def test_stale_signature_is_refused(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.command("dave", timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 401
    assert bot.command("dave", timestamp=int(time.time()) - 60).status_code == 200


def test_healthz_answers_ok_and_other_paths_are_not_found(bot: Bot) -> None:
    resp = bot.healthz()
    assert resp.status_code == 200 and resp.text.strip() == "ok"
    assert bot.session.get(f"{bot.base_url}/slack/events", timeout=5).status_code == 404
    assert bot.session.post(f"{bot.base_url}/other", data="x", timeout=5).status_code == 404


def test_a_body_too_large_for_slack_is_refused_before_the_app(
    bot: Bot, slack: SlackStandIn
) -> None:
    resp = bot.post("text=" + "x" * (2 * 1024 * 1024), "application/x-www-form-urlencoded")
    assert resp.status_code == 413
    assert not slack.calls
