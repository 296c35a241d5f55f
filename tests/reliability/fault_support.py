"""Helpers for fault tests: the service as a real process that can be killed, a TOML
writer, a fault-injecting HTTP proxy in front of Slack, PostgreSQL restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import requests
import sqlalchemy as sa
from sqlalchemy.engine import URL

from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
APPROVERS = ["alice", "bob", "carol", "dave", "erin"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def slow_sql(millions: int) -> str:
    """A read-only PostgreSQL query busy for about millions/13 seconds, in memory only."""
    return (
        "SELECT count(*) AS n FROM generate_series(1, 300) a, generate_series(1, 300) b, "
        f"generate_series(1, {max(1, millions * 1_000_000 // 90_000)}) c"
    )


# -- TOML ----------------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Nested dicts as [tables]; enough for the service's configuration."""
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    out = [f"[{prefix}]"] if prefix and plain else []
    out += [f"{k} = {_toml_value(v)}" for k, v in plain.items()]
    for k, v in tables.items():
        out.append(to_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def reliability_config(
    home: Path, store_url: str, source_url: str, **sections: Any
) -> dict[str, Any]:
    """The service's config: PostgreSQL task store, datasource `pg`, short stale limit."""
    config: dict[str, Any] = {
        "server": {"data_dir": str(home / "data"), "shutdown_grace_s": 2},
        "task_store": {"url": store_url},
        "export": {"stale_run_s": 3, "workers": 2, "statement_timeout_s": 60},
        "storage": {"local": {"http_listen": f"127.0.0.1:{free_port()}"}},
        "scheduler": {"enabled": False},
        "datasources": {
            "pg": {
                "url": source_url,
                "approvers": APPROVERS,
                "allow_privileged_reader": True,  # the test server's superuser
                "approval_channel": "C_APPROVALS",
                "required_approvals": 1,
            }
        },
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


# -- the service as a process --------------------------------------------------------------


class Caller:
    """TaskService stub acting as one user, with the service's token."""

    def __init__(self, channel: grpc.Channel, user: str, token: str, timeout: float) -> None:
        self._stub = pb_grpc.TaskServiceStub(channel)
        self.metadata = [("x-woxqaq-user", user)] if user else []
        if token:
            self.metadata.append(("authorization", f"Bearer {token}"))
        self.timeout = timeout

    def __getattr__(self, name: str) -> Callable[..., Any]:
        rpc = getattr(self._stub, name)
        return lambda request, **kw: rpc(
            request, metadata=self.metadata, **{"timeout": self.timeout, **kw}
        )


class ServiceProcess:
    """`python -m service` with a config of our own; stderr kept across restarts."""

    def __init__(self, config: dict[str, Any], home: Path, env: dict[str, str] | None = None):
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config.setdefault("server", {})["listen"] = f"127.0.0.1:{self.port}"
        self.config = config
        self.token = str(config["server"].get("token", ""))
        self.home = home
        self.config_path = home / "woxqaq.toml"
        self.config_path.write_text(to_toml(config), encoding="utf-8")
        self.stderr_path = home / "service.stderr"
        self.env = {**os.environ, "WOXQAQ_CONFIG": str(self.config_path), **(env or {})}
        self.env["PYTHONPATH"] = str(ROOT)
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service"],
                cwd=self.home,
                env=self.env,
                stdout=err,
                stderr=err,
            )
        # A new channel each try: one whose first connect came before the new process
        # listened may sit in reconnect back-off (up to minutes) long after it does.
        deadline = time.monotonic() + timeout
        while True:
            if self.channel is not None:
                self.channel.close()
            self.channel = grpc.insecure_channel(self.addr)
            try:
                grpc.channel_ready_future(self.channel).result(
                    timeout=max(0.1, min(5.0, deadline - time.monotonic()))
                )
                break
            except grpc.FutureTimeoutError:
                if time.monotonic() < deadline and self.proc.poll() is None:
                    continue
                code = self.proc.poll()
                raise AssertionError(
                    f"service did not start (exit {code}):\n{self.stderr()[-3000:]}"
                ) from None
        return self

    def caller(self, user: str, timeout: float = 30.0) -> Caller:
        assert self.channel is not None, "start() first"
        return Caller(self.channel, user, self.token, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=30)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    # -- shortcuts -------------------------------------------------------------------------

    def submit_sql(
        self, user: str, dsn: str, sql: str, schedule: pb.Schedule | None = None, **ded: Any
    ) -> pb.SubmitTaskResponse:
        detail = pb.DataExportDetail(export_reason=ded.pop("reason", "reliability"), **ded)
        detail.ebs.statement = sql
        req = pb.SubmitTaskRequest(
            kind=pb.TASK_KIND_DATA_EXPORT, dsn=dsn, ded=detail, schedule=schedule
        )
        return self.caller(user).SubmitTask(req)

    def detail(self, task_id: str | int, user: str = "auditor") -> pb.GetTaskDetailResponse:
        return self.caller(user).GetTaskDetail(pb.GetTaskDetailRequest(task_id=str(task_id)))


# -- PostgreSQL restarts ---------------------------------------------------------------------


def pg_is_ready() -> bool:
    return (
        subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True, check=False
        ).returncode
        == 0
    )


def restart_postgres(*, down_s: float = 0.0) -> None:
    """Stop the machine's PostgreSQL, keep it down `down_s`, start it; always leaves it up."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    ctl = [shutil.which("pg_ctlcluster") or "pg_ctlcluster", "--skip-systemctl-redirect", version]
    try:
        subprocess.run([*ctl, "main", "stop", "-m", "fast"], check=True, capture_output=True)
        time.sleep(down_s)
    finally:
        subprocess.run([*ctl, "main", "start"], check=False, capture_output=True)
        wait_for(pg_is_ready, timeout=60, what="PostgreSQL back up")


# -- a fault-injecting HTTP proxy ----------------------------------------------------------


class FaultyProxy:
    """An HTTP proxy in front of `upstream` that can refuse connections (down) or answer the
    next requests with a scripted status (429 with Retry-After, 500) without forwarding."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[tuple[str, int]] = []  # (path, status answered)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> FaultyProxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        """Close the listening socket: connections are refused until up()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, status: int, times: int = 1, retry_after: int = 0, body: bytes = b""):
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        payload = body or json.dumps({"ok": False, "error": f"http_{status}"}).encode()
        with self._lock:
            self.answers += [(status, headers, payload)] * times

    def _next_answer(self) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            return self.answers.pop(0) if self.answers else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted = proxy._next_answer()
                if scripted is not None:
                    status, headers, out = scripted
                    ctype = "application/json" if out.startswith(b"{") else "text/html"
                else:
                    fwd = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in ("host", "content-length", "connection")
                    }
                    resp = proxy._session.post(
                        proxy.upstream + self.path, data=body, headers=fwd, timeout=30
                    )
                    status, out = resp.status_code, resp.content
                    headers = {k: v for k, v in resp.headers.items() if k.lower() == "retry-after"}
                    ctype = resp.headers.get("Content-Type", "application/json")
                with proxy._lock:
                    proxy.seen.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Handler


def scratch_database(base: URL, suffix: str) -> Iterator[URL]:
    """A database of a test module's own beside the session's (same server, same rules)."""
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"{base.database}_{suffix}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.set(database=name)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if base.get_backend_name() == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()
