"""Tokens: a token Slack refuses while the bot runs pauses delivery and makes the bot
unhealthy, and the waiting notifications go out once the token works; at start, the bot
checks its tokens with Slack (tested as a process in test_bot_process.py)."""

from __future__ import annotations

import time

import pytest
from bot_support import APPROVAL_CHANNEL, Bot, wait_for
from slack_standin import TOKEN, SlackStandIn

from bot.settings import Settings, SettingsError
from bot.startup import StartupError, check_tokens
from woxqaq.v1 import task_service_pb2 as pb

SQL = "SELECT order_no, amount FROM orders"


def submit(bot: Bot) -> str:
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement=SQL), export_reason="r"),
    )
    return bot.service.submit("dave", req).task_id


@pytest.mark.parametrize(
    "slack_mode, error",
    [
        ("http", "token_revoked"),
        ("http", "account_inactive"),
        ("http", "invalid_auth"),
        ("socket", "token_revoked"),
    ],
)
def test_a_refused_token_stops_the_retries_until_it_works_and_loses_nothing(
    bot: Bot, slack: SlackStandIn, error: str
) -> None:
    assert bot.healthz().status_code == 200
    slack.revoke(TOKEN, error)
    submit(bot)
    unhealthy = wait_for(
        lambda: (r := bot.healthz()).status_code == 503 and r.text, what="unhealthy"
    )
    assert error in unhealthy and "SLACK_BOT_TOKEN" in unhealthy and TOKEN not in unhealthy
    attempts = len(slack.of("chat.postMessage"))
    time.sleep(1.0)  # five token checks' worth: no more posting meanwhile, only auth.test
    assert len(slack.of("chat.postMessage")) == attempts == 1
    assert len(slack.of("auth.test")) >= 2
    assert not slack.in_channel(APPROVAL_CHANNEL)

    slack.restore(TOKEN)  # the workspace reinstalled the app, or reactivated it
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="approval request delivered")
    assert bot.healthz().status_code == 200
    assert len(slack.in_channel(APPROVAL_CHANNEL)) == 1


def test_a_bot_with_a_working_token_delivers_what_a_refused_one_left(
    make_bot, slack: SlackStandIn
) -> None:
    first = make_bot()
    slack.revoke(TOKEN)
    submit(first)
    wait_for(lambda: first.healthz().status_code == 503, what="first bot unhealthy")
    first.stop()
    slack.restore(TOKEN)  # a new token in the real world; the same one here
    make_bot()
    wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="delivered by the second bot")


@pytest.mark.parametrize(
    "refused, variable",
    [(("xoxb-other", ""), "SLACK_BOT_TOKEN"), (("", "xapp-other"), "SLACK_APP_TOKEN")],
)
def test_check_tokens_names_the_variable_and_what_slack_said(
    slack: SlackStandIn, refused: tuple[str, str], variable: str
) -> None:
    from slack_standin import APP_TOKEN

    bot_token = refused[0] or TOKEN
    settings = Settings(
        bot_token=bot_token, app_token=refused[1] or APP_TOKEN, api_url=slack.api_url
    )
    with pytest.raises(StartupError) as caught:
        check_tokens(settings)
    message = str(caught.value)
    assert message.startswith(f"{variable} was refused by Slack (invalid_auth)")
    assert "\n" not in message and "xoxb-other" not in message and "xapp-other" not in message
    assert caught.value.exit_code == 2


def test_a_bot_token_where_the_app_token_goes_is_told_as_the_wrong_kind(
    slack: SlackStandIn,
) -> None:
    settings = Settings(bot_token=TOKEN, app_token=TOKEN, api_url=slack.api_url)
    with pytest.raises(StartupError, match=r"SLACK_APP_TOKEN .*not_allowed_token_type.*xapp-"):
        check_tokens(settings)


def test_slack_out_of_reach_at_start_is_one_line_and_exit_1() -> None:
    settings = Settings(bot_token=TOKEN, api_url="http://127.0.0.1:9/api/")
    with pytest.raises(StartupError, match="could not reach Slack") as caught:
        check_tokens(settings, timeout_s=2)
    assert caught.value.exit_code == 1


def test_socket_mode_does_not_demand_the_signing_secret() -> None:
    settings = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert settings.socket_mode and settings.signing_secret == ""
    with pytest.raises(SettingsError, match=r"SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(SettingsError, match="set SLACK_BOT_TOKEN"):
        Settings.from_env({"SLACK_APP_TOKEN": "xapp-1"})
