"""Fixtures for the Slack bot: the Slack stand-in, the real service, the real Bolt app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from block_limits import check_payload
from bot_support import Bot, shop_config
from import_support import Target, target_table
from slack_standin import SlackStandIn
from sqlalchemy.engine import URL

from bot.metrics import BotMetrics
from service.config import parse_config
from service.server import Service


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """The stand-in for Slack; at the end every payload the bot sent must fit Slack's limits
    and every Socket Mode ack must have named an envelope that was sent."""
    standin = SlackStandIn().start()
    yield standin
    standin.stop()
    assert not standin.socket_mode.stray_acks, "acks naming no envelope sent"
    problems = [
        f"{kind} {i}: {p}"
        for i, (kind, payload) in enumerate(standin.sent_payloads())
        for p in check_payload(kind, payload)
    ]
    assert not problems, "Block Kit limits exceeded:\n" + "\n".join(problems)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(
        store_url: str = "",
        *,
        clock: Callable[[], datetime] | None = None,
        metrics: bool = False,
        **shop: Any,
    ) -> Service:
        data = shop_config(tmp_path, store_url, **shop)
        if metrics:  # /metrics on a free loopback port
            data["metrics"] = {"listen": "127.0.0.1:0"}
        if clock is not None:  # the test drives the scheduler's ticks
            data["scheduler"] = {"enabled": False}
        service = Service(
            parse_config(data), listen="127.0.0.1:0", **({"clock": clock} if clock else {})
        )
        port = service.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        channel.close()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(grace_s=5)


@pytest.fixture
def service(start_service: Callable[..., Service]) -> Service:
    return start_service()


@pytest.fixture
def slack_mode() -> str:
    """How Slack reaches the bot: "http" (signed requests) or "socket" (Socket Mode). The
    suites that drive the bot as Slack does run in both, with
    `pytestmark = pytest.mark.parametrize("slack_mode", MODES)`."""
    return "http"


@pytest.fixture
def make_bot(
    slack: SlackStandIn, slack_mode: str, request: pytest.FixtureRequest
) -> Callable[..., Bot]:
    """Bots in front of `service` (default: the `service` fixture's)."""

    def make(
        service: Service | None = None, *, delivery: bool = True, metrics: BotMetrics | None = None
    ) -> Bot:
        service = service or request.getfixturevalue("service")
        b = Bot(
            slack,
            f"127.0.0.1:{service.port}",
            service.config.server.token,
            slack_mode,
            metrics=metrics,
        )
        # Registered after the service started, so the bot stops before the service does.
        request.addfinalizer(b.stop)
        if delivery:
            b.start_delivery()
        return b

    return make


@pytest.fixture
def bot(make_bot: Callable[..., Bot]) -> Bot:
    return make_bot()


@pytest.fixture
def target(pg_url: URL) -> Iterator[Target]:
    """A PostgreSQL table with a reader and a writer of its own, for imports and generation."""
    with target_table(pg_url) as t:
        yield t
