"""Fixtures for the task service: the real server on a real socket, real stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from service_support import Running, shop_config

from service.config import parse_config
from service.server import Service


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start real services on free ports; each is stopped after the test."""
    started: list[Running] = []

    def start(
        config: dict[str, Any] | None = None,
        *,
        store_url: str = "",
        clock: Callable[[], datetime] | None = None,
        **overrides: Any,
    ) -> Running:
        data = config if config is not None else shop_config(tmp_path, store_url, **overrides)
        cfg = parse_config(data)
        service = Service(cfg, listen="127.0.0.1:0", **({"clock": clock} if clock else {}))
        port = service.start()
        addr = f"127.0.0.1:{port}"
        channel = grpc.insecure_channel(addr)
        grpc.channel_ready_future(channel).result(timeout=10)
        running = Running(service, cfg, channel, addr, cfg.server.token or None)
        started.append(running)
        return running

    yield start
    for running in started:
        running.channel.close()
        running.service.stop(grace_s=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The task store under test: SQLite (embedded default) and the machine's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    url = request.getfixturevalue("fresh_pg_url")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def svc(store_url: str, start_service: Callable[..., Running]) -> Running:
    """The service with the shop datasource, on each task store."""
    return start_service(store_url=store_url)
