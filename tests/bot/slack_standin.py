"""A local stand-in for Slack's Web API and response_url endpoints, recording every call.

Answers like Slack does (`{"ok": true, "channel": ..., "ts": ...}`), keeps the current
content of every message so a test can read what a channel shows, and can be scripted to
fail: an error such as `channel_not_found`, or HTTP 429 with Retry-After. Tokens are
checked as Slack checks them: the bot token for the Web API, the app-level token for
`apps.connections.open`, which hands out a URL of the Socket Mode stand-in; a token can
be revoked (`token_revoked`, `account_inactive`) and restored.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from socket_mode_standin import SocketModeStandIn

TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
JSON_FIELDS = ("blocks", "view", "attachments", "metadata")


@dataclass
class Call:
    method: str  # Web API method, or "response_url"
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


@dataclass
class Script:
    method: str
    error: str = ""
    status: int = 200
    retry_after: int = 0
    times: int = 1
    when: Callable[[dict[str, Any]], bool] = lambda params: True


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    updates: int = 0


class SlackStandIn:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self._scripts: list[Script] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._response_ids = itertools.count(1)
        self._files = itertools.count(1)
        self.uploads: dict[str, bytes] = {}  # file id → the bytes uploaded to its URL
        self.files: list[dict[str, Any]] = []  # completed uploads: id, title, channel
        self.socket_mode = SocketModeStandIn()
        self._revoked: dict[str, str] = {}  # token → the error Slack answers it with
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll: stopping the stand-in then takes 50 ms, not half a second per test.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> SlackStandIn:
        self._thread.start()
        self.socket_mode.start()
        return self

    def stop(self) -> None:
        self.socket_mode.stop()
        self.server.shutdown()
        self.server.server_close()

    def response_url(self) -> str:
        return f"{self.url}/response/{next(self._response_ids)}"

    # -- scripting and reading -----------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] = lambda p: True,
    ) -> None:
        with self._lock:
            self._scripts.append(Script(method, error=error, times=times, when=when))

    def rate_limit(
        self,
        method: str,
        retry_after: int = 1,
        *,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] = lambda p: True,
    ) -> None:
        with self._lock:
            self._scripts.append(
                Script(method, status=429, retry_after=retry_after, times=times, when=when)
            )

    def revoke(self, token: str = TOKEN, error: str = "token_revoked") -> None:
        """From now on Slack refuses `token` with `error`, as after an uninstall."""
        with self._lock:
            self._revoked[token] = error

    def restore(self, token: str = TOKEN) -> None:
        with self._lock:
            self._revoked.pop(token, None)

    def _auth_error(self, method: str, authorization: str | None) -> str:
        """What Slack answers a call made with this Authorization header, "" when allowed."""
        token = (authorization or "").removeprefix("Bearer ")
        if not token:
            return "not_authed"
        with self._lock:
            if token in self._revoked:
                return self._revoked[token]
        if token not in (TOKEN, APP_TOKEN):
            return "invalid_auth"
        if (method == "apps.connections.open") != (token == APP_TOKEN):
            return "not_allowed_token_type"
        return ""

    def of(self, method: str, **match: Any) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and all(c.params.get(k) == v for k, v in match.items())
            ]

    def in_channel(self, channel: str) -> list[Message]:
        with self._lock:
            return [m for (ch, _), m in self.messages.items() if ch == channel]

    def dm(self, user: str) -> list[Message]:
        return self.in_channel(f"D{user}")

    def sent_payloads(self) -> list[tuple[str, dict[str, Any]]]:
        """Every Block Kit payload the bot sent, successful or not: (kind, payload)."""
        out: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            calls = list(self.calls)
        for c in calls:
            if c.method in (
                "chat.postMessage",
                "chat.update",
                "chat.postEphemeral",
                "response_url",
            ):
                out.append(("message", c.params))
            elif c.method in ("views.open", "views.update", "views.push", "views.publish"):
                out.append(("view", c.params.get("view") or {}))
            if c.method == "view_ack" and c.params.get("view"):
                out.append(("view", c.params["view"]))
        return out

    def record_ack(self, body: dict[str, Any]) -> None:
        """Record a modal the bot returned in an HTTP ack (response_action update/push)."""
        with self._lock:
            self.calls.append(Call("view_ack", body))

    # -- HTTP ------------------------------------------------------------------------------

    def _script_for(self, method: str, params: dict[str, Any]) -> Script | None:
        with self._lock:
            for s in self._scripts:
                if s.method == method and s.times > 0 and s.when(params):
                    s.times -= 1
                    return s
        return None

    def _answer(
        self, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        script = self._script_for(method, params)
        if script is not None and script.status == 429:
            with self._lock:
                self.calls.append(Call(method, params, status=429))
            return (
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(script.retry_after)},
            )
        if script is not None and script.error:
            with self._lock:
                self.calls.append(Call(method, params, error=script.error))
            return 200, {"ok": False, "error": script.error}, {}
        with self._lock:
            self.calls.append(Call(method, params))
            return 200, self._ok(method, params), {}

    def _ok(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode.new_url()}
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "team_id": "T1",
                "user": "woxqaq",
            }
        if method == "chat.postMessage":
            channel = str(p.get("channel", ""))
            if not channel.startswith(("C", "D", "G")):
                channel = f"D{channel}"  # posting to a user id opens the app's DM with them
            ts = f"1700000000.{next(self._ts):06d}"
            self.messages[(channel, ts)] = Message(
                channel, ts, p.get("text", ""), p.get("blocks") or []
            )
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": p.get("text", "")},
            }
        if method == "chat.update":
            key = (str(p.get("channel")), str(p.get("ts")))
            msg = self.messages.get(key)
            if msg is None:
                return {"ok": False, "error": "message_not_found"}
            msg.text, msg.blocks, msg.updates = (
                p.get("text", ""),
                p.get("blocks") or [],
                msg.updates + 1,
            )
            return {"ok": True, "channel": key[0], "ts": key[1]}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files)}"
            return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            for f in files:
                self.files.append({**f, "channel": p.get("channel_id", "")})
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "files.info":
            return {"ok": True, "file": {"id": p.get("file", "")}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000001.{next(self._ts):06d}"}
        if method in ("views.open", "views.push"):
            view_id = f"V{next(self._views)}"
            view = {**(p.get("view") or {}), "id": view_id, "hash": f"h{view_id}"}
            self.views[view_id] = view
            return {"ok": True, "view": view}
        if method == "views.update":
            view_id = str(p.get("view_id"))
            view = {**(p.get("view") or {}), "id": view_id, "hash": f"h{view_id}-{next(self._ts)}"}
            self.views[view_id] = view
            return {"ok": True, "view": view}
        if method == "views.publish":
            self.home[str(p.get("user_id"))] = p.get("view") or {}
            return {"ok": True, "view": {**(p.get("view") or {}), "id": "VHOME"}}
        return {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                if path.startswith("/upload/"):  # a file's bytes, as Slack's upload URL takes
                    with standin._lock:
                        standin.uploads[path.removeprefix("/upload/")] = body
                    self._send(200, f"OK - {len(body)}".encode(), "text/plain", {})
                    return
                raw = body.decode()
                params = _params(raw, self.headers.get("Content-Type", ""))
                if path.startswith("/response/"):
                    with standin._lock:
                        standin.calls.append(Call("response_url", {**params, "url": path}))
                    self._send(200, b"ok", "text/plain", {})
                    return
                method = path.removeprefix("/api/")
                refused = standin._auth_error(method, self.headers.get("Authorization"))
                if refused:
                    with standin._lock:
                        standin.calls.append(Call(method, params, error=refused))
                    self._json(200, {"ok": False, "error": refused}, {})
                    return
                status, body, headers = standin._answer(method, params)
                self._json(status, body, headers)

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                self._send(status, json.dumps(body).encode(), "application/json", headers)

            def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _params(raw: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        return json.loads(raw or "{}")
    params: dict[str, Any] = dict(parse_qsl(raw, keep_blank_values=True))
    for key in JSON_FIELDS:  # form-encoded calls carry these as JSON strings
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params
