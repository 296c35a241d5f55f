"""`python -m service` as a process: start-up errors, serving, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import URL

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
        # the start-up check wrote to the file store and left nothing behind
        assert list((tmp_path / "data" / "files" / "objects").iterdir()) == []
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "stopped" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()


# -- start-up checks: one line naming the key and the fix, exit 2 ---------------------------

AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAWOXQAQSTARTCHECK",
    "AWS_SECRET_ACCESS_KEY": "start-check-secret-never-shown",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _stopped_at_start(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> str:
    """Start `python -m service` with `toml` (plus a data_dir and free ports); it must stop
    at once with exit 2 and one line on stderr, which is returned."""
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{_free_port()}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage.local]\nhttp_listen = "127.0.0.1:{_free_port()}"\n' + toml
    )
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env=_env(config) | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("woxqaq: config key "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.postgres
def test_a_task_store_database_that_does_not_exist_stops_startup(
    tmp_path: Path, pg_url: URL
) -> None:
    missing = f"woxqaq_missing_{uuid.uuid4().hex[:8]}"
    url = pg_url.set(database=missing, password="hunter2-start").render_as_string(
        hide_password=False
    )
    line = _stopped_at_start(tmp_path, f'[task_store]\nurl = "{url}"\n')
    assert line.startswith("woxqaq: config key task_store.url: ")
    assert f"the task store database '{missing}' does not exist" in line
    assert f"createdb {missing}" in line and "hunter2" not in line


def test_an_unreachable_task_store_stops_startup(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://woxqaq:hunter2-start@127.0.0.1:{_free_port()}/tasks"
    line = _stopped_at_start(tmp_path, f'[task_store]\nurl = "{url}"\n')
    assert line.startswith("woxqaq: config key task_store.url: cannot open the task store at ")
    assert "refused" in line.lower() and "hunter2" not in line


def test_a_bucket_that_does_not_exist_stops_startup_and_one_that_does_is_left_clean(
    tmp_path: Path, s3_endpoint: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
    )
    missing = f"woxqaq-missing-{uuid.uuid4().hex[:8]}"
    storage = f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "{s3_endpoint}"\n'
    line = _stopped_at_start(tmp_path, storage + f'bucket = "{missing}"\n', AWS)
    assert line.startswith("woxqaq: config key storage.s3.bucket: could not upload ")
    assert f"S3 bucket '{missing}'" in line and "NoSuchBucket" in line
    assert "create the bucket or fix storage.s3.bucket" in line
    assert AWS["AWS_SECRET_ACCESS_KEY"] not in line

    # An existing bucket: the service starts and its check leaves nothing behind.
    bucket = f"woxqaq-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    port = _free_port()
    config = tmp_path / "ok.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{tmp_path / "ok"}"\n'
        + storage
        + f'bucket = "{bucket}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"], env=_env(config) | AWS, stderr=subprocess.PIPE, text=True
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_a_local_store_or_data_dir_that_cannot_be_written_stops_startup(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    line = _stopped_at_start(tmp_path, f'dir = "{a_file / "files"}"\n')
    assert line == (
        f"woxqaq: config key storage.local.dir: cannot write to {a_file / 'files'}: "
        "Not a directory; point storage.local.dir (or server.data_dir) at a directory the "
        "service may write"
    )
    config = tmp_path / "data-dir.toml"
    config.write_text(f'[server]\ndata_dir = "{a_file / "data"}"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env=_env(config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        f"woxqaq: config key server.data_dir: cannot create {a_file / 'data'}: Not a directory; "
        "point it at a directory the service may write\n",
    )


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
    [done] = [e for e in lines if e["message"] == "export success"]
    assert done["task_id"] == task_id and done["run_id"] == int(detail.runs[0].id)
    assert "bot-s3cret" not in stderr
