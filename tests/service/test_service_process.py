"""`python -m service` as a process: start-up errors, serving, graceful shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(config: Path) -> dict[str, str]:
    return {**os.environ, "WOXQAQ_CONFIG": str(config), "PYTHONPATH": str(ROOT)}


def test_bad_config_stops_startup_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        '[datasources.shop]\nurl = "postgresql://u:hunter2@h/db"\nrequired_approvals = "many"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env=_env(config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and "datasources.shop.required_approvals" in lines[0]
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


def test_serves_embedded_setup_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage.local]\nhttp_listen = "127.0.0.1:{_free_port()}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=_env(config), stderr=subprocess.PIPE, text=True
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        assert (tmp_path / "data" / "demo.db").exists()
        assert (tmp_path / "data" / "tasks.db").exists()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "stopped" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
