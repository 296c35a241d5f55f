"""Serving the Bolt app over HTTP: one thread per request, signature checked by Bolt.

Bolt's own development server handles one request at a time; a slow request would then
delay the next one's ack past Slack's 3 seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY = 1024 * 1024


class SlackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 3000, path: str = EVENTS_PATH):
        self.app = app
        self.path = path
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> int:
        self._thread = threading.Thread(target=self.serve_forever, name="slack-http", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: SlackHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/healthz":
            self._reply(200, b"ok", {"Content-Type": "text/plain"})
        else:
            self._reply(404)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != self.server.path:
            self._reply(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413)
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        headers: dict[str, str | Sequence[str]] = {}
        for key, value in self.headers.items():
            previous = headers.get(key.lower())
            headers[key.lower()] = [*previous, value] if isinstance(previous, list) else [value]
        req = BoltRequest(body=body, query=url.query, headers=headers)
        resp = self.server.app.dispatch(req)
        out = resp.body.encode("utf-8") if isinstance(resp.body, str) else (resp.body or b"")
        flat = {k: v[0] for k, v in resp.headers.items() if v}
        self._reply(resp.status, out, flat)
