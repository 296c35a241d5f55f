"""The bot's Prometheus metrics: deliveries to Slack and the Slack requests it answers.

Served on WOXQAQ_METRICS_LISTEN when set (a port alone binds loopback), like the
service's `metrics.listen`. Labels are fixed words (notification kind, outcome, request
type), never a user, channel or team. The bot is a client of the service: it serves its
own registry rather than import the service's metrics module.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from slack_bolt import App, BoltRequest, BoltResponse

from bot.settings import parse_listen

DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3)  # Slack waits 3 s

# Notification kinds the service writes; anything else is counted as "other".
KINDS = frozenset(
    {
        "approval_requested",
        "vote",
        "approved",
        "rejected",
        "canceled",
        "run_started",
        "run_finished",
    }
)


class BotMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._server: Any = None
        self._thread: Any = None
        self.deliveries = Counter(
            "woxqaq_bot_deliveries",
            "Notifications handled, by kind and outcome: delivered, retry (Slack or the "
            "service failed; acked for a later attempt), token_refused or lease_lost.",
            ("kind", "outcome"),
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "woxqaq_bot_delivery_seconds",
            "Time to render and post one notification to Slack.",
            ("kind",),
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "woxqaq_bot_slack_requests",
            "Requests from Slack answered, by type (slash_command, block_actions, "
            "view_submission, event_callback …) and HTTP status.",
            ("type", "status"),
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "woxqaq_bot_slack_request_seconds",
            "Time to answer a request from Slack (the listener's ack).",
            ("type",),
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )

    def delivered(self, kind: str, outcome: str, seconds: float) -> None:
        kind = kind if kind in KINDS else "other"
        self.deliveries.labels(kind, outcome).inc()
        self.delivery_seconds.labels(kind).observe(seconds)

    def instrument(self, app: App) -> None:
        """Count and time every request the app answers, over HTTP or Socket Mode alike:
        both adapters hand each request to `App.dispatch`, and a Bolt middleware could not
        time the listener (it runs after the middleware chain returns)."""
        dispatch = app.dispatch

        def timed_dispatch(req: BoltRequest) -> BoltResponse:
            started = time.perf_counter()
            kind = _request_type(req.body)
            response = dispatch(req)
            self.requests.labels(kind, str(response.status)).inc()
            self.request_seconds.labels(kind).observe(time.perf_counter() - started)
            return response

        app.dispatch = timed_dispatch  # type: ignore[method-assign]

    def serve(self, listen: str) -> int:
        """Serve /metrics on `listen`; the port bound (0 in `listen` picks a free one)."""
        host, port = parse_listen(listen)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None


_REQUEST_TYPES = frozenset(
    {
        "block_actions",
        "view_submission",
        "view_closed",
        "event_callback",
        "shortcut",
        "message_action",
        "block_suggestion",
        "url_verification",
    }
)


def _request_type(body: dict[str, Any]) -> str:
    if "command" in body:
        return "slash_command"
    kind = body.get("type")
    return kind if kind in _REQUEST_TYPES else "other"
