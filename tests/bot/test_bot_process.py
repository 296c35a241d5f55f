"""`python -m bot` as a process: HTTP mode on $PORT at /slack/events, or Socket Mode with
/healthz on $PORT; the delivery loop beside either; tokens checked with Slack at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import requests
from bot_support import APPROVAL_CHANNEL, SECRET, sign, wait_for
from grpc_health.v1 import health_pb2, health_pb2_grpc
from slack_standin import APP_TOKEN, TOKEN, SlackStandIn

from bot.service_client import ServiceClient
from service.server import Service
from woxqaq.v1 import task_service_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot_env(slack: SlackStandIn, service: Service | None, port: int, **slack_vars: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env |= {"SLACK_API_URL": slack.api_url, "PORT": str(port), **slack_vars}
    if service is not None:
        env |= {
            "WOXQAQ_SERVICE_ADDR": f"127.0.0.1:{service.port}",
            "WOXQAQ_SERVICE_TOKEN": service.config.server.token,
        }
    return env


def start_bot(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def started_bot(
    slack: SlackStandIn, service: Service, **slack_vars: str
) -> tuple[subprocess.Popen, str]:
    """A bot process on a free port, once its /healthz says it is up; and its base URL."""
    port = free_port()
    proc = start_bot(bot_env(slack, service, port, **slack_vars))
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: proc.poll() is None and _up(url), what="bot up and healthy")
    return proc, url


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def submit_one(service: Service) -> None:
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


def test_bot_process_serves_http_and_delivers(slack: SlackStandIn, service: Service) -> None:
    proc, url = started_bot(slack, service, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET)
    try:
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
        assert requests.post(f"{url}/elsewhere", data=body, timeout=5).status_code == 404
        submit_one(service)
        wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="delivery from the process")
    finally:
        out = stop(proc)
    assert TOKEN not in out and SECRET not in out and service.config.server.token not in out


def test_bot_process_in_socket_mode_needs_no_signing_secret(
    slack: SlackStandIn, service: Service
) -> None:
    proc, url = started_bot(slack, service, SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    try:
        assert slack.socket_mode.wait_connections(1) and slack.socket_mode.connected == 1
        # /slack/events is not served in Socket Mode: Slack does not send requests there
        assert requests.post(f"{url}/slack/events", data="x", timeout=5).status_code == 404
        submit_one(service)
        wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), what="delivery from the process")
        before = len(slack.socket_mode.hellos)
        slack.socket_mode.drop(reset=False)
        assert slack.socket_mode.wait_connections(before + 1, timeout=5)
        wait_for(lambda: _up(url), what="healthy after reconnecting")
    finally:
        out = stop(proc)
    assert TOKEN not in out and APP_TOKEN not in out and "Traceback" not in out


@pytest.mark.parametrize(
    "tokens, says",
    [
        ({"SLACK_SIGNING_SECRET": SECRET}, "bot: set SLACK_BOT_TOKEN"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_SIGNING_SECRET": SECRET},
            "bot: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)",
        ),
        (
            {"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": "xapp-revoked"},
            "bot: SLACK_APP_TOKEN was refused by Slack (invalid_auth)",
        ),
    ],
)
def test_a_missing_or_refused_token_is_one_line_and_exit_2(
    slack: SlackStandIn, tokens: dict[str, str], says: str
) -> None:
    proc = start_bot(bot_env(slack, None, free_port(), **tokens))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out.strip().startswith(says) and len(out.strip().splitlines()) == 1, out
    assert "xoxb-revoked" not in out and "xapp-revoked" not in out
    assert not slack.of("chat.postMessage")


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        time.sleep(0.05)
        return False


def test_run_keeps_the_service_when_the_bot_cannot_start(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[storage.local]\nhttp_listen = "127.0.0.1:{free_port()}"\n'
    )
    env = bot_env(
        slack,
        None,
        free_port(),
        SLACK_BOT_TOKEN="xoxb-revoked",
        SLACK_SIGNING_SECRET=SECRET,
        WOXQAQ_CONFIG=str(config),
        VENV=str(Path(sys.executable).parents[1]),
    )
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: slack.of("auth.test"), what="the bot's token check")
        time.sleep(1.0)  # the bot has exited by now; the service must still answer
        assert proc.poll() is None
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert err.count("SLACK_BOT_TOKEN was refused by Slack (invalid_auth)") == 1, err
    assert err.count("run: the Slack bot stopped (exit 2") == 1, err
    assert "Traceback" not in err and "xoxb-revoked" not in err


def test_a_port_in_use_is_one_line_and_exit_2(slack: SlackStandIn) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_bot(
            bot_env(slack, None, port, SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
        )
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    lines = [line for line in out.splitlines() if line.startswith("bot: ")]
    assert lines == [f"bot: cannot listen on PORT {port}: Address already in use"], out
    assert "Traceback" not in out
