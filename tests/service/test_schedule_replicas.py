"""Two `python -m service` replicas on one PostgreSQL task store fire each run exactly once,
and keep firing when one of them is killed. Real processes, real clock: about 3 minutes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import URL

from service.demo import ensure_demo_database
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _replica(tmp: Path, name: str, store_url: str, shop: Path) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    config = tmp / f"{name}.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{tmp / name}"\n'
        f'[storage.local]\nhttp_listen = "127.0.0.1:{_free_port()}"\n'
        f'[task_store]\nurl = "{store_url}"\n'
        "[export]\nstale_run_s = 10\n"
        f'[datasources.shop]\nurl = "sqlite:///{shop}"\napprovers = ["alice"]\n'
    )
    env = {**os.environ, "WOXQAQ_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=env, stderr=log, stdout=log, text=True
    )
    return proc, port


@pytest.mark.postgres
@pytest.mark.slow
def test_two_replicas_fire_each_minute_once_and_survive_a_kill(
    tmp_path: Path, fresh_pg_url: URL
) -> None:
    store_url = fresh_pg_url.render_as_string(hide_password=False)
    shop = tmp_path / "shop.db"
    ensure_demo_database(shop)
    a, port_a = _replica(tmp_path, "a", store_url, shop)
    b, port_b = _replica(tmp_path, "b", store_url, shop)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port_a}")
        grpc.channel_ready_future(channel).result(timeout=60)
        with grpc.insecure_channel(f"127.0.0.1:{port_b}") as other:
            grpc.channel_ready_future(other).result(timeout=60)
        stub = pb_grpc.TaskServiceStub(channel)

        def as_user(user: str) -> list[tuple[str, str]]:
            return [("x-woxqaq-user", user)]

        ded = pb.DataExportDetail(export_reason="minutely report")
        ded.ebs.statement = "SELECT order_no, amount FROM orders"
        schedule = pb.Schedule(
            trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *", timezone="UTC", channel="C"
        )
        resp = stub.SubmitTask(
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT, dsn="shop", ded=ded, schedule=schedule
            ),
            metadata=as_user("dave"),
            timeout=30,
        )
        assert resp.ok
        stub.Approve(
            pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"),
            metadata=as_user("alice"),
            timeout=30,
        )
        approved = datetime.now(UTC)
        first = approved.replace(second=0, microsecond=0) + timedelta(minutes=1)
        third = first + timedelta(minutes=2)

        # One replica dies (kill -9) between the first and the second firing.
        _sleep_until(first + timedelta(seconds=20))
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=30)
        channel.close()

        _sleep_until(third + timedelta(seconds=20))
        with grpc.insecure_channel(f"127.0.0.1:{port_b}") as survivor:
            detail = pb_grpc.TaskServiceStub(survivor).GetTaskDetail(
                pb.GetTaskDetailRequest(task_id=resp.task_id), metadata=as_user("dave"), timeout=30
            )
        runs = list(detail.runs)
        assert len(runs) == 3, [(r.id, r.status, r.error) for r in runs]
        assert all(r.status == pb.TASK_STATUS_EXECUTE_SUCCESS for r in runs), runs
        assert detail.task.status == pb.TASK_STATUS_APPROVED
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
