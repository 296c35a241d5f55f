"""`python -m bot` as a process: HTTP mode on $PORT at /slack/events, delivery loop beside it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from bot_support import APPROVAL_CHANNEL, SECRET, sign, wait_for
from slack_standin import TOKEN, SlackStandIn

from service.server import Service

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bot_process_serves_http_and_delivers(slack: SlackStandIn, service: Service) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "WOXQAQ_SERVICE_ADDR": f"127.0.0.1:{service.port}",
        "WOXQAQ_SERVICE_TOKEN": service.config.server.token,
        "PORT": str(port),
    }
    env.pop("SLACK_APP_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(url), what="bot listening")
        body = (
            "command=%2Fexport&text=&user_id=dave&channel_id=C1&trigger_id=t1&response_url="
            + slack.url
            + "%2Fresponse%2F9"
        )
        resp = requests.post(
            f"{url}/slack/events",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
            timeout=5,
        )
        assert resp.status_code == 200
        wait_for(lambda: slack.of("views.open"), what="form opened")
        forged = requests.post(
            f"{url}/slack/events",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret="x")},
            timeout=5,
        )
        assert forged.status_code == 401

        from bot.service_client import ServiceClient
        from woxqaq.v1 import task_service_pb2 as pb

        client = ServiceClient(f"127.0.0.1:{service.port}", service.config.server.token)
        client.submit(
            "dave",
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="shop",
                ded=pb.DataExportDetail(
                    ebs=pb.ExportBySQL(statement="SELECT 1 AS one"), export_reason="r"
                ),
            ),
        )
        client.close()
        wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="delivery from the process")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert TOKEN not in out and SECRET not in out and service.config.server.token not in out


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        time.sleep(0.05)
        return False
