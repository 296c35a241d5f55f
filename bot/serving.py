"""How Slack reaches the bot, through Bolt's own adapters: Socket Mode (websocket-client),
or HTTP (the WSGI adapter under waitress). Either way an HTTP server on $PORT answers
/healthz; in HTTP mode it also takes Slack's requests at /slack/events."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import waitress
from slack_bolt import App
from slack_bolt.adapter.socket_mode.base_handler import BaseSocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import websocket_client
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.health import TOKEN_ERRORS, Health

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; anything larger is not Slack
# Requests served at once; each ack is quick, the work after it runs on Bolt's own pool.
HTTP_THREADS = 16

WSGIApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


def wsgi_app(health: Health, app: App | None = None) -> WSGIApp:
    """/healthz, and with `app` Slack's requests at /slack/events (signatures checked by
    Bolt); anything else is 404."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            problem = health.problem()
            body = (problem or "ok").encode() + b"\n"
            status = "503 Service Unavailable" if problem else "200 OK"
            start_response(
                status,
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if slack is not None:
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    return application


class HTTPServer:
    """waitress serving a WSGI app from a thread of its own, stoppable for tests."""

    def __init__(self, application: WSGIApp, host: str = "0.0.0.0", port: int = 3000) -> None:
        self._server: Any = waitress.create_server(
            application,
            host=host,
            port=port,
            threads=HTTP_THREADS,
            max_request_body_size=MAX_BODY,
            ident="woxqaq-bot",
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._server.run, name="slack-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> HTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Let requests in progress finish (for up to 5 s), then close the connections and
        stop listening.

        The workers go first: each pulls waitress's trigger when it has a response ready,
        and one pulling it as it closes fails. The sockets are closed by the serving thread
        itself, between two polls (waitress runs what its trigger is handed there): closed
        from here, under that thread's select(), they made it fail with EBADF. With every
        socket closed, its loop ends."""
        self._server.task_dispatcher.shutdown()
        if self._thread.is_alive():
            self._server.trigger.pull_trigger(self._close_sockets)
            self._thread.join(timeout=5)
        else:
            self._close_sockets()

    def _close_sockets(self) -> None:
        self._server.close()
        for channel in list(self._server._map.values()):  # connections, and the trigger
            channel.handle_close()


class _SocketModeClient(websocket_client.SocketModeClient):
    """slack-sdk's websocket-client Socket Mode client, with changes to how it keeps the
    connection: each session runs once, in a thread of its own (a closed one is not reopened
    on its old URL), with a ping timeout (without one websocket-client never notices a peer
    that stopped answering, and its reader could wait on a closed socket); and while Slack
    refuses the app-level token, the monitor asks again only every `token_retry_s`."""

    _session_run: Any = None
    token_error = ""  # what Slack last said refusing the app-level token
    token_retry_s = 30.0
    _next_try = 0.0

    def _run_current_session(self) -> None:
        # Each session reads in a thread of its own: a new one starts at the session
        # runner's next tick, instead of after the replaced one's reader notices its socket
        # was closed under it, which can take a ping timeout (5 s on a `disconnect` refresh).
        session = self.current_session
        if session is None or session is self._session_run:
            return
        self._session_run = session
        threading.Thread(
            target=self._run_session, args=(session,), name="socket-mode-session", daemon=True
        ).start()

    def _run_session(self, session: Any) -> None:
        try:
            session.run_forever(
                ping_interval=self.ping_interval, ping_timeout=self.ping_interval / 2
            )
        except Exception as exc:
            self.logger.warning("Socket Mode session failed: %s", exc)
            session.close()  # the monitor sees the closed session and reconnects

    def _monitor_current_session(self) -> None:
        if self.token_error and time.monotonic() < self._next_try:
            return
        super()._monitor_current_session()  # reconnects when the session is closed

    def issue_new_wss_url(self) -> str:
        try:
            url: str = super().issue_new_wss_url()
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in TOKEN_ERRORS:
                self.token_error = error
                self._next_try = time.monotonic() + self.token_retry_s
            raise
        self.token_error = ""
        return url


class SocketModeHandler(BaseSocketModeHandler):
    """Bolt's Socket Mode handler over the client above: each envelope is dispatched to the
    app and acknowledged with Bolt's own functions, as Bolt's websocket-client adapter does."""

    client: _SocketModeClient

    def __init__(self, app: App, app_token: str, *, ping_interval_s: float = 10.0) -> None:
        self.app = app
        self.app_token = app_token
        self.client = _SocketModeClient(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            ping_interval=ping_interval_s,
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        send_response(client, req, run_bolt_app(self.app, req), started)


class SocketMode:
    """The bot's Socket Mode connection.

    Not slack-sdk's built-in client: it reads the empty result of a socket the peer closed
    without a close frame as "no data yet" and spins a core on it until its pings fail,
    about a minute (unchanged up to slack-sdk 3.48.0). websocket-client reports the closed
    connection at once and the client reconnects.
    """

    def __init__(
        self,
        app: App,
        app_token: str,
        *,
        ping_interval_s: float = 10.0,
        token_retry_s: float = 30.0,
    ) -> None:
        self.handler = SocketModeHandler(app, app_token, ping_interval_s=ping_interval_s)
        self._client: _SocketModeClient = self.handler.client
        self._client.token_retry_s = token_retry_s

    def connect(self) -> None:
        self.handler.connect()

    def connected(self) -> bool:
        """The WebSocket handshake is done (slack-sdk's is_connected() is true from the
        moment a session starts connecting)."""
        session = self._client.current_session
        return bool(session is not None and session.sock is not None and session.sock.connected)

    def problem(self) -> str:
        """Why it is not connected, in one line; "" when it is."""
        if self.connected():
            return ""
        if self._client.token_error:
            return f"Slack refuses SLACK_APP_TOKEN ({self._client.token_error})"
        return "not connected to Slack in Socket Mode"

    def close(self) -> None:
        # slack-sdk's close() disconnects before it stops the thread that starts sessions,
        # which could meanwhile start one more: stop that thread first; and wake the message
        # thread, else close() waits a second for a message that won't come.
        self._client.current_session_runner.event.set()
        self._client.closed = True
        self._client.message_queue.put(None)
        self.handler.close()
