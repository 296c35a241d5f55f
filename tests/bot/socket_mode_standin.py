"""A local stand-in for Slack's Socket Mode end: a WebSocket server that greets each
connection with `hello`, delivers envelopes, records their acks, asks for a reconnect with
`disconnect` and drops connections the ways networks do (a reset, no close frame).

`apps.connections.open` on the Web API stand-in hands out its ws:// URLs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

ACK_DEADLINE_S = 3.0  # Slack shows the person an error when an envelope is not acked in time
# How long Slack keeps a connection open after asking the client to reconnect.
REFRESH_GRACE_S = 10.0


@dataclass
class Envelope:
    """One delivery over the socket, and its acknowledgement when it came."""

    type: str  # slash_commands, interactive, events_api
    payload: dict[str, Any]
    retry_attempt: int | None = None
    retry_reason: str = ""
    accepts_response_payload: bool = False
    envelope_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent_at: float = 0.0
    acked_at: float | None = None
    ack_payload: dict[str, Any] | None = None
    _acked: threading.Event = field(default_factory=threading.Event, repr=False)

    def message(self) -> str:
        out: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.retry_attempt is not None:
            out["retry_attempt"] = self.retry_attempt
            out["retry_reason"] = self.retry_reason
        return json.dumps(out)

    def wait_ack(self, timeout: float = ACK_DEADLINE_S) -> bool:
        return self._acked.wait(timeout)

    @property
    def ack_s(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


class SocketModeStandIn:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._live: list[ServerConnection] = []  # taking new envelopes, oldest first
        self.hellos: list[float] = []  # when each connection was greeted
        self.envelopes: list[Envelope] = []
        self.stray_acks: list[str] = []  # envelope ids acked that were never sent
        self._tickets = itertools.count(1)
        self._server: Server = serve(self._serve, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    def start(self) -> SocketModeStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def new_url(self) -> str:
        """What apps.connections.open answers: a fresh URL for one connection."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(self._tickets)}&app_id=A1"

    # -- the connections -------------------------------------------------------------------

    def _serve(self, conn: ServerConnection) -> None:
        hello = {
            "type": "hello",
            "num_connections": len(self._live) + 1,
            "debug_info": {"host": "standin", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A1"},
        }
        conn.send(json.dumps(hello))
        with self._cond:
            self._live.append(conn)
            self.hellos.append(time.monotonic())
            self._cond.notify_all()
        try:
            for raw in conn:
                self._on_message(raw)
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            envelope_id = message["envelope_id"]
        except (ValueError, KeyError, TypeError):
            return
        with self._cond:
            env = next((e for e in self.envelopes if e.envelope_id == envelope_id), None)
            if env is None:
                self.stray_acks.append(envelope_id)
                return
            if env.acked_at is None:
                env.acked_at = time.monotonic()
                env.ack_payload = message.get("payload")
                env._acked.set()
            self._cond.notify_all()

    def _forget(self, conn: ServerConnection) -> None:
        with self._cond:
            if conn in self._live:
                self._live.remove(conn)
            self._cond.notify_all()

    @property
    def connected(self) -> int:
        with self._cond:
            return len(self._live)

    def wait_connections(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Wait until `n` hellos have been sent in all and a connection is live."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self.hellos) >= n and bool(self._live), timeout=timeout
            )

    # -- deliveries --------------------------------------------------------------------------

    def deliver(self, env: Envelope, wait_s: float = 15.0) -> Envelope:
        """Send on the newest live connection, waiting for one as Slack holds deliveries
        while the app reconnects."""
        deadline = time.monotonic() + wait_s
        while True:
            with self._cond:
                if not self._cond.wait_for(
                    lambda: self._live, max(0.0, deadline - time.monotonic())
                ):
                    raise AssertionError("no Socket Mode connection to deliver on")
                conn = self._live[-1]
                env.sent_at = time.monotonic()
                if env not in self.envelopes:
                    self.envelopes.append(env)
            try:
                conn.send(env.message())
                return env
            except ConnectionClosed:
                self._forget(conn)  # dropped meanwhile: the next connection takes it

    # -- asking for a reconnect, and dropping -----------------------------------------------

    def refresh(self) -> None:
        """`disconnect` (refresh_requested) as Slack sends before it retires a connection:
        the old one takes no new envelopes, and closes once a new one is up (or later)."""
        with self._cond:
            if not self._live:
                return
            old = self._live.pop()
            before = len(self.hellos)
        old.send(
            json.dumps(
                {
                    "type": "disconnect",
                    "reason": "refresh_requested",
                    "debug_info": {"host": "standin"},
                }
            )
        )

        def retire() -> None:
            with self._cond:
                self._cond.wait_for(lambda: len(self.hellos) > before, timeout=REFRESH_GRACE_S)
            with contextlib.suppress(Exception):
                old.close()

        threading.Thread(target=retire, daemon=True).start()

    def drop(self, *, reset: bool) -> None:
        """Close the newest connection's TCP socket without a WebSocket close frame: with a
        reset (RST) as a crashed peer, or a plain FIN as a load balancer closing it."""
        with self._cond:
            if not self._live:
                return
            conn = self._live.pop()
        if reset:
            conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close_socket()
