"""The bot's settings from the environment: metrics and log format, refused clearly when
malformed."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError

SLACK = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret"}


def test_metrics_and_json_logs_are_off_unless_asked_for() -> None:
    settings = Settings.from_env(SLACK)
    assert settings.metrics_listen == "" and settings.log_format == "text"
    on = Settings.from_env(SLACK | {"WOXQAQ_METRICS_LISTEN": "9465", "WOXQAQ_LOG_FORMAT": "JSON"})
    assert on.metrics_listen == "9465" and on.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WOXQAQ_METRICS_LISTEN", "localhost:metrics", "not host:port or a port number"),
        ("WOXQAQ_METRICS_LISTEN", "99999", "out of range"),
        ("WOXQAQ_LOG_FORMAT", "xml", "must be text or json"),
    ],
)
def test_a_malformed_setting_names_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=rf"{name}.*{says}"):
        Settings.from_env(SLACK | {name: value})
