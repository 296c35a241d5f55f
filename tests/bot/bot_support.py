"""Driving the bot as Slack does, in either of its modes: signed HTTP requests into the
real Bolt app served by waitress, or envelopes over the Socket Mode stand-in's WebSocket;
the real service behind it, the Slack stand-in in front of its Web API calls."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_standin import APP_TOKEN, TOKEN, SlackStandIn
from socket_mode_standin import ACK_DEADLINE_S, Envelope

from bot.app import build_app
from bot.delivery import Delivery
from bot.health import Health
from bot.metrics import BotMetrics
from bot.service_client import ServiceClient
from bot.serving import HTTPServer, SocketMode, wsgi_app
from bot.settings import Settings
from service.demo import ensure_demo_database

SECRET = "test-signing-secret"
MODES = ("http", "socket")  # how Slack reaches the bot: signed HTTP requests, or Socket Mode
APPROVERS = ["alice", "bob", "carol"]
APPROVAL_CHANNEL = "C_APPROVALS"


def shop_config(tmp: Path, store_url: str = "", **shop: Any) -> dict[str, Any]:
    db = tmp / "shop.db"
    ensure_demo_database(db)
    datasource = {
        "url": f"sqlite:///{db}",
        "approvers": APPROVERS,
        "approval_channel": APPROVAL_CHANNEL,
        "required_approvals": 1,
        "description": "the shop",
    } | shop
    return {
        "server": {"data_dir": str(tmp / "data"), "token": "service-token"},
        "storage": {"local": {"http_listen": "127.0.0.1:0"}},
        "task_store": {"url": store_url or f"sqlite:///{tmp / 'tasks.db'}"},
        "datasources": {"shop": datasource},
    }


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


def values_for(fields: dict[str, Any]) -> dict[str, Any]:
    """view.state.values as Slack sends them, from field → value (str, option value, bool)."""
    out: dict[str, Any] = {}
    selects = {"datasource", "format", "encoding", "content", "executor"}
    checks = {"export_all": "all", "schedule": "cron"}
    for key, value in fields.items():
        if key in selects:
            state = {
                "type": "static_select",
                "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}},
            }
        elif key in checks:
            state = {
                "type": "checkboxes",
                "selected_options": [{"value": checks[key]}] if value else [],
            }
        elif key == "channel":
            state = {"type": "conversations_select", "selected_conversation": value}
        else:
            state = {"type": "plain_text_input", "value": value}
        out[key] = {key: state}
    return out


@dataclass
class Answer:
    """What Slack got back: over HTTP the response, in Socket Mode the envelope's ack
    (status 200 when it came within Slack's 3 seconds, else 504)."""

    status_code: int
    text: str = ""
    envelope: Envelope | None = None

    @property
    def content(self) -> bytes:
        return self.text.encode()

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Bot:
    """One running bot: its connection to Slack in `mode`, its /healthz, its delivery loop,
    and helpers to act on Slack."""

    slack: SlackStandIn
    service_addr: str
    service_token: str
    mode: str = "http"
    upload_max_bytes: int = 64 * 1024
    token_check_interval_s: float = 0.2
    metrics: BotMetrics | None = None

    def __post_init__(self) -> None:
        assert self.mode in MODES, self.mode
        self.settings = Settings(
            bot_token=TOKEN,
            signing_secret=SECRET if self.mode == "http" else "",
            app_token=APP_TOKEN if self.mode == "socket" else "",
            api_url=self.slack.api_url,
            service_addr=self.service_addr,
            service_token=self.service_token,
            port=0,
            consumer=f"bot-test-{uuid.uuid4().hex[:6]}",
        )
        self.client = WebClient(token=TOKEN, base_url=self.slack.api_url)
        self.service = ServiceClient(self.service_addr, self.service_token)
        self.app = build_app(self.settings, self.client, self.service, self.metrics)
        self.health = Health()
        self.socket: SocketMode | None = None
        if self.mode == "socket":
            self.socket = SocketMode(self.app, APP_TOKEN, ping_interval_s=2.0, token_retry_s=0.5)
            self.health.watch_socket(self.socket.problem)
            greeted = len(self.slack.socket_mode.hellos)
            self.socket.connect()
            assert self.slack.socket_mode.wait_connections(greeted + 1), "no Socket Mode hello"
        served = None if self.socket else self.app
        self.http = HTTPServer(wsgi_app(self.health, served), host="127.0.0.1", port=0).start()
        self.base_url = f"http://127.0.0.1:{self.http.port}"
        self.url = f"{self.base_url}/slack/events"
        self.delivery: Delivery | None = None
        self.session = requests.Session()

    def start_delivery(self, consumer: str | None = None) -> Delivery:
        self.delivery = Delivery(
            self.client,
            self.service,
            consumer or f"bot-test-{uuid.uuid4().hex[:6]}",
            poll_interval_s=0.05,
            lease_s=30,
            progress_interval_s=0.2,
            upload_max_bytes=self.upload_max_bytes,
            health=self.health,
            token_check_interval_s=self.token_check_interval_s,
            metrics=self.metrics,
        )
        self.delivery.start()
        return self.delivery

    def stop_delivery(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None

    def stop(self) -> None:
        self.stop_delivery()
        if self.socket is not None:
            self.socket.close()
        self.http.stop()
        self.service.close()

    def healthz(self) -> requests.Response:
        return self.session.get(f"{self.base_url}/healthz", timeout=5)

    # -- requests as Slack sends them ----------------------------------------------------

    def post(
        self, body: str, content_type: str, headers: dict[str, str] | None = None, **sign_kw: Any
    ) -> requests.Response:
        h = {"Content-Type": content_type, **sign(body, **sign_kw), **(headers or {})}
        resp = self.session.post(self.url, data=body.encode(), headers=h, timeout=10)
        return resp

    def send(self, kind: str, payload: dict[str, Any], *, retry: int = 0, **http: Any) -> Answer:
        """Deliver `payload` as Slack does in this bot's mode: `kind` is the envelope type
        (slash_commands, interactive, events_api); `retry` > 0 marks Slack's retry number.
        Signature options (secret, timestamp, headers) are for HTTP mode."""
        if self.mode == "http":
            if kind == "slash_commands":
                body, ctype = urlencode(payload), "application/x-www-form-urlencoded"
            elif kind == "interactive":
                body = urlencode({"payload": json.dumps(payload)})
                ctype = "application/x-www-form-urlencoded"
            else:
                body, ctype = json.dumps(payload), "application/json"
            if retry:
                retry_headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"}
                http["headers"] = {**retry_headers, **http.get("headers", {})}
            resp = self.post(body, ctype, **http)
            return Answer(resp.status_code, resp.text)
        assert not http, f"HTTP-only options in Socket Mode: {sorted(http)}"
        envelope = Envelope(
            kind,
            payload,
            # Slack marks every delivery of an event with its attempt, a first one with 0.
            retry_attempt=retry if kind == "events_api" or retry else None,
            retry_reason="timeout" if retry else "",
            accepts_response_payload=kind != "events_api",
        )
        self.slack.socket_mode.deliver(envelope)
        if not envelope.wait_ack(ACK_DEADLINE_S):
            return Answer(504, "", envelope)
        body = json.dumps(envelope.ack_payload) if envelope.ack_payload else ""
        return Answer(200, body, envelope)

    def command(self, user: str, text: str = "", **kw: Any) -> Answer:
        payload = {
            "command": "/export",
            "text": text,
            "user_id": user,
            "user_name": user,
            "team_id": "T1",
            "channel_id": "C_GENERAL",
            "trigger_id": f"trig-{uuid.uuid4().hex[:8]}",
            "response_url": self.slack.response_url(),
            "api_app_id": "A1",
        }
        return self.send("slash_commands", payload, **kw)

    def interact(self, payload: dict[str, Any], **kw: Any) -> Answer:
        return self.send("interactive", payload, **kw)

    def event(self, event: dict[str, Any], **kw: Any) -> Answer:
        body = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": event,
            "event_id": f"Ev{uuid.uuid4().hex[:8]}",
            "event_time": int(time.time()),
        }
        return self.send("events_api", body, **kw)

    def click(
        self,
        user: str,
        action_id: str,
        value: str,
        *,
        channel: str = "",
        ts: str = "",
        view: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Answer:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "trigger_id": f"trig-{uuid.uuid4().hex[:8]}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "type": "button",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id", "V")}
            payload["view"] = view
        else:
            payload["container"] = {
                "type": "message",
                "channel_id": channel,
                "message_ts": ts,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel}
            payload["message"] = {"ts": ts, "text": ""}
            payload["response_url"] = self.slack.response_url()
        return self.interact(payload, **kw)

    def submit_view(
        self, user: str, view: dict[str, Any], values: dict[str, Any], **kw: Any
    ) -> Answer:
        payload = {
            "type": "view_submission",
            "user": {"id": user, "username": user},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "trigger_id": f"trig-{uuid.uuid4().hex[:8]}",
            "view": {**view, "state": {"values": values}},
        }
        resp = self.interact(payload, **kw)
        if resp.status_code == 200 and resp.content:
            self.slack.record_ack(resp.json())
        return resp

    # -- flows -------------------------------------------------------------------------

    def open_form(self, user: str) -> dict[str, Any]:
        before = len(self.slack.of("views.open"))
        assert self.command(user).status_code == 200
        wait_for(lambda: len(self.slack.of("views.open")) > before, what="views.open")
        opened = self.slack.of("views.open")[-1]
        view_id = sorted(self.slack.views, key=lambda v: int(v[1:]))[-1]
        assert opened.params["view"]["callback_id"] == "export_submit"
        return self.slack.views[view_id]

    def submit_export(self, user: str, **fields: Any) -> Answer:
        view = self.open_form(user)
        if "tables" in fields or "export_all" in fields:
            self.switch_mode(user, view, "tables")
            view = self.slack.views[view["id"]]
        base = {
            "datasource": "shop",
            "format": "csv",
            "encoding": "utf8",
            "content": "data",
            "executor": "auto",
            "reason": "monthly report",
        }
        return self.submit_view(user, view, values_for(base | fields))

    def switch_mode(self, user: str, view: dict[str, Any], mode: str) -> None:
        before = len(self.slack.of("views.update"))
        payload = {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "trigger_id": "trig",
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [
                {
                    "action_id": "export_mode",
                    "block_id": "mode",
                    "type": "radio_buttons",
                    "selected_option": {"value": mode},
                }
            ],
        }
        assert self.interact(payload).status_code == 200
        wait_for(lambda: len(self.slack.of("views.update")) > before, what="views.update")

    def form_for(self, user: str, mode: str, title: str) -> dict[str, Any]:
        """The request form switched to `mode` ("import", "generate"…), titled `title`."""
        view = self.open_form(user)
        self.switch_mode(user, view, mode)
        view = self.slack.views[view["id"]]
        assert view["title"]["text"] == title
        return view
