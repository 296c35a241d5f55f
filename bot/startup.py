"""Tokens checked at start: one line naming the variable and what Slack said, never a
traceback, never the token itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.settings import Settings

# What to do about Slack's answer, for the person starting the bot.
_ADVICE = {
    "invalid_auth": "the token is not valid; copy it again from the app's settings",
    "not_authed": "no token reached Slack",
    "token_revoked": "the token was revoked; reinstall the app and copy the new token",
    "account_inactive": "the app was uninstalled or its workspace deactivated; reinstall it",
    "not_allowed_token_type": "it is the wrong kind of token",
    "missing_scope": "the token lacks a scope; see the README's Slack set-up",
    "invalid_token": "the token is not valid; copy it again from the app's settings",
}
_KINDS = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-…, OAuth & Permissions)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…, Basic Information) with connections:write",
}


class StartupError(Exception):
    """The bot cannot start; the message is one line for the person who started it."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_tokens(settings: Settings, timeout_s: int = 10) -> None:
    """auth.test with the bot token; in Socket Mode also apps.connections.open with the
    app-level token, the call Socket Mode makes to connect."""
    # The SDK's own log lines about a failed call would repeat the one line said here.
    quiet = logging.getLogger("bot.startup.slack")
    quiet.setLevel(logging.CRITICAL)
    client = WebClient(base_url=settings.api_url, timeout=timeout_s, logger=quiet)
    _ask(settings, "SLACK_BOT_TOKEN", lambda: client.auth_test(token=settings.bot_token))
    if settings.socket_mode:
        _ask(
            settings,
            "SLACK_APP_TOKEN",
            lambda: client.apps_connections_open(app_token=settings.app_token),
        )


def _ask(settings: Settings, variable: str, call: Callable[[], object]) -> None:
    try:
        call()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) or f"HTTP {exc.response.status_code}"
        advice = _ADVICE.get(error, "see the README's Slack set-up")
        if error in ("not_allowed_token_type", "invalid_auth"):
            advice += f"; it takes {_KINDS[variable]}"
        raise StartupError(f"{variable} was refused by Slack ({error}): {advice}") from None
    except OSError as exc:  # refused, reset, timed out, DNS: Slack is out of reach, not wrong
        reason = getattr(exc, "reason", None) or exc
        raise StartupError(
            f"could not reach Slack at {settings.api_url} to check {variable}: {reason}",
            exit_code=1,
        ) from None
