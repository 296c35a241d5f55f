"""Fixtures for reliability tests: the service as a process, a PostgreSQL datasource, an S3
server that can be stopped and started again, the Slack stand-in behind a faulty proxy."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from fault_support import ServiceProcess, free_port, pg_is_ready, restart_postgres
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import URL

# The Slack stand-in and the bot drivers live with the bot's tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bot"))
# The gRPC callers (service_support) live with the service's tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))


@pytest.fixture(scope="session")
def pg_source(pg_url: URL) -> str:
    """A PostgreSQL datasource URL with a small `rel_orders` table."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS rel_orders (id int PRIMARY KEY, customer text, "
            "amount numeric(10,2), created date)"
        )
        conn.exec_driver_sql(
            "INSERT INTO rel_orders SELECT g, 'customer ' || g, g * 1.5, DATE '2024-01-01' + g "
            "FROM generate_series(1, 200) g ON CONFLICT DO NOTHING"
        )
    engine.dispose()
    return pg_url.render_as_string(hide_password=False)


@pytest.fixture
def no_orphan_queries(pg_url: URL) -> Iterator[None]:
    """Cancel queries a killed service left running in the datasource's database."""
    yield
    if not pg_is_ready():
        restart_postgres()
    engine = sa.create_engine(pg_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid() AND query LIKE '%generate_series%'"
            ),
            {"db": pg_url.database},
        )
    engine.dispose()


@pytest.fixture
def service_process(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start `python -m service` processes; each is stopped (or was killed) at the end."""
    started: list[ServiceProcess] = []

    def start(config: dict[str, Any], *, env: dict[str, str] | None = None) -> ServiceProcess:
        proc = ServiceProcess(config, tmp_path / f"svc{len(started)}", env).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(timeout=15)


@pytest.fixture
def scratch_store(fresh_pg_url: URL) -> str:
    """A task store of the test's own on the machine's PostgreSQL."""
    return fresh_pg_url.render_as_string(hide_password=False)


class RestartableS3:
    """A moto S3 server on a fixed port that can be stopped and started again (moto keeps
    its buckets in the process, so a restarted server still has them)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bucket = f"woxqaq-rel-{uuid.uuid4().hex[:10]}"
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture
def restartable_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RestartableS3]:
    """Credentials in the environment, as the service process takes them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAWOXQAQRELIABLE",
        "AWS_SECRET_ACCESS_KEY": "woxqaq-reliability-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s3 = RestartableS3()
    s3.start()
    s3.client().create_bucket(Bucket=s3.bucket)
    yield s3
    s3.stop()
