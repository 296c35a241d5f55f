"""What the bot's /healthz reports: whether it can talk to Slack right now."""

from __future__ import annotations

import threading
from collections.abc import Callable

# Slack refuses the token itself: retrying cannot help until someone fixes the token.
TOKEN_ERRORS = frozenset({"invalid_auth", "account_inactive", "token_revoked", "not_authed"})


class Health:
    """The Socket Mode connection (when there is one) and the bot token as last used."""

    def __init__(self) -> None:
        self._socket_problem: Callable[[], str] | None = None
        self._lock = threading.Lock()
        self._token_error = ""

    def watch_socket(self, problem: Callable[[], str]) -> None:
        """`problem()` says why Socket Mode is not connected, "" when it is."""
        self._socket_problem = problem

    def token_refused(self, error: str) -> None:
        with self._lock:
            self._token_error = error

    def token_works(self) -> None:
        with self._lock:
            self._token_error = ""

    @property
    def token_error(self) -> str:
        with self._lock:
            return self._token_error

    def problem(self) -> str:
        """Why the bot is unhealthy, in one line; "" when it is healthy."""
        error = self.token_error
        if error:
            return f"Slack refuses SLACK_BOT_TOKEN ({error}); messages wait until it works"
        return self._socket_problem() if self._socket_problem is not None else ""
