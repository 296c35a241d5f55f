"""In Slack a person's words are shown as they wrote them: the service's "[via CLIENT]"
marker names the client that acted for them, which there is the bot itself."""

from __future__ import annotations

from bot.blocks.common import own_words


def test_the_via_marker_is_dropped_and_only_at_the_start() -> None:
    assert own_words("[via slack-bot] ok for March") == "ok for March"
    assert own_words("[via slack-bot]") == ""
    assert own_words("ok [via x] stays") == "ok [via x] stays"
    assert own_words("[via a] [via b] one marker only") == "[via b] one marker only"
    assert own_words("") == ""
