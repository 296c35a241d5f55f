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
