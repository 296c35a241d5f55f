"""`python -m service` as a process: start-up errors, serving, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

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


def _start_embedded(tmp_path: Path, more_toml: str = "") -> tuple[int, subprocess.Popen[str]]:
    """`python -m service` on the embedded setup, on free ports; its gRPC port and process."""
    port = _free_port()
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage.local]\nhttp_listen = "127.0.0.1:{_free_port()}"\n{more_toml}'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=_env(config), stderr=subprocess.PIPE, text=True
    )
    return port, proc


def test_serves_embedded_setup_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, proc = _start_embedded(tmp_path)
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


def test_json_logs_and_metrics_of_a_running_process(tmp_path: Path) -> None:
    """`log.format = "json"`: every line one JSON object, naming the task, the run and the
    principal where known; `metrics.listen`: /metrics of the same process over HTTP."""
    metrics_port = _free_port()
    port, proc = _start_embedded(
        tmp_path,
        f'[log]\nformat = "json"\n[metrics]\nlisten = "{metrics_port}"\n'
        '[[auth.principals]]\nname = "chat-bot"\ntoken = "bot-s3cret"\nacts_for = ["*"]\n',
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = pb_grpc.TaskServiceStub(channel)
            bearer = ("authorization", "Bearer bot-s3cret")
            as_alice = [("x-woxqaq-user", "alice"), bearer]
            submitted = stub.SubmitTask(
                pb.SubmitTaskRequest(
                    kind=pb.TASK_KIND_DATA_EXPORT,
                    dsn="demo",
                    ded=pb.DataExportDetail(
                        export_reason="logs", ebs={"statement": "SELECT id FROM customers"}
                    ),
                ),
                metadata=as_alice,
                timeout=30,
            )
            assert submitted.ok
            stub.Approve(
                pb.ApproveRequest(task_id=int(submitted.task_id), approver="approver"),
                metadata=[("x-woxqaq-user", "approver"), bearer],
                timeout=30,
            )
            deadline = time.monotonic() + 30
            while True:
                detail = stub.GetTaskDetail(
                    pb.GetTaskDetailRequest(task_id=submitted.task_id), metadata=as_alice
                )
                if detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS:
                    break
                assert time.monotonic() < deadline, detail.task.status
                time.sleep(0.05)
        scraped = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert (
            'woxqaq_runs_total{datasource="demo",format="csv",kind="data_export",status="success"} 1.0'
            in scraped
        )
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()

    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    task_id = int(submitted.task_id)
    [submit] = [e for e in lines if e["message"] == "task submitted"]
    assert submit["task_id"] == task_id
    assert submit["principal"] == "chat-bot" and submit["user"] == "alice"
    assert submit["method"] == "/woxqaq.v1.TaskService/SubmitTask"
    [done] = [e for e in lines if e["message"] == "export succeeded"]
    assert done["task_id"] == task_id and done["run_id"] == int(detail.runs[0].id)
    assert "bot-s3cret" not in stderr
