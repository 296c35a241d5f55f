"""Wiring only: the Bolt app with its listeners. Nothing happens at import time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.idempotency import OnceCache
from bot.listeners import actions, commands, events, views
from bot.service_client import ServiceClient
from bot.settings import Settings
from woxqaq.v1 import notification_service_pb2 as npb

log = logging.getLogger(__name__)

DATASOURCE_TTL_S = 60.0


class DatasourceCache:
    """The service's datasources, re-read at most once a minute: /export must open fast."""

    def __init__(self, service: ServiceClient, ttl_s: float = DATASOURCE_TTL_S) -> None:
        self._service = service
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: list[npb.Datasource] = []
        self._at = float("-inf")

    def get(self) -> list[npb.Datasource]:
        with self._lock:
            if time.monotonic() - self._at > self._ttl_s:
                self._value = self._service.datasources()
                self._at = time.monotonic()
            return self._value


@dataclass
class Deps:
    """What the listeners share: one of each, passed down, no globals.

    A middleware puts it in Bolt's context, so a listener asks for it by name (`deps`)
    like it asks for `ack` or `client`.
    """

    settings: Settings
    service: ServiceClient
    datasources: DatasourceCache
    submissions: OnceCache[Any] = field(default_factory=OnceCache)


def with_rate_limit_retries(client: WebClient, retries: int = 3) -> WebClient:
    """Let the client wait out HTTP 429 (Retry-After) a few times before giving up."""
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=retries))
    return client


def provide_deps(deps: Deps) -> Callable[..., None]:
    """The middleware that hands every listener the shared `deps`."""

    def set_deps(context: BoltContext, next: Callable[[], None]) -> None:
        context["deps"] = deps
        next()

    return set_deps


def skip_event_retries(req: BoltRequest, resp: BoltResponse, next: Any) -> BoltResponse | None:
    """Slack re-sends an event it thinks was not acknowledged; the first one did the work.

    View submissions are not skipped here: their own idempotency key answers a repeat with
    the first one's outcome, which also covers a repeat that carries no retry header.
    """
    if retry_number(req) > 0 and req.body.get("type") == "event_callback":
        return BoltResponse(status=200, body="")
    return next()


def retry_number(req: BoltRequest) -> int:
    """How many times Slack sent this before: 0 for a first delivery.

    Socket Mode marks a first delivery `retry_attempt: 0`, which Bolt passes on as a retry
    header of "0"; over HTTP a first delivery has no such header.
    """
    values = req.headers.get("x-slack-retry-num") or []
    try:
        return int(values[0])
    except (IndexError, ValueError):
        return 0


def build_app(
    settings: Settings, client: WebClient | None = None, service: ServiceClient | None = None
) -> App:
    client = with_rate_limit_retries(
        client or WebClient(token=settings.bot_token, base_url=settings.api_url)
    )
    service = service or ServiceClient.from_settings(settings)
    app = App(
        client=client,
        signing_secret=settings.signing_secret,
        token_verification_enabled=False,  # bot.startup checks the tokens, with a clearer message
        process_before_response=False,  # ack() answers Slack at once; the work goes on after
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener"),
    )
    app.use(skip_event_retries)
    app.use(provide_deps(Deps(settings, service, DatasourceCache(service))))
    commands.register(app)
    actions.register(app)
    views.register(app)
    events.register(app)
    return app
