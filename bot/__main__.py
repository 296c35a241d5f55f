"""`python -m bot`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT at
/slack/events; /healthz on $PORT either way, and the notification delivery loop beside.

The tokens are checked with Slack first: a bot that cannot work says why in one line and
exits with 2 (1 when Slack is out of reach), without a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import build_app, with_rate_limit_retries
from bot.delivery import Delivery
from bot.health import Health
from bot.service_client import ServiceClient
from bot.serving import HTTPServer, SocketMode, wsgi_app
from bot.settings import Settings, SettingsError
from bot.startup import StartupError, check_tokens

log = logging.getLogger("bot")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        client = with_rate_limit_retries(
            WebClient(token=settings.bot_token, base_url=settings.api_url, timeout=10)
        )
        check_tokens(settings)
    except SettingsError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return exc.exit_code
    return run(settings, client)


def run(settings: Settings, client: WebClient) -> int:
    service = ServiceClient.from_settings(settings)
    app = build_app(settings, client, service)
    health = Health()
    try:  # /healthz in both modes; Slack's requests too in HTTP mode
        http = HTTPServer(
            wsgi_app(health, None if settings.socket_mode else app), port=settings.port
        )
    except OSError as exc:
        print(f"bot: cannot listen on PORT {settings.port}: {exc.strerror or exc}", file=sys.stderr)
        service.close()
        return 2
    delivery = Delivery(
        client,
        service,
        settings.consumer,
        poll_interval_s=settings.poll_interval_s,
        lease_s=settings.lease_s,
        upload_max_bytes=settings.upload_max_bytes,
        health=health,
        token_check_interval_s=settings.token_check_interval_s,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    socket_mode = SocketMode(app, settings.app_token) if settings.socket_mode else None
    if socket_mode is not None:
        health.watch_socket(socket_mode.problem)
    http.start()
    delivery.start()
    code = 0
    try:
        if socket_mode is not None:
            socket_mode.connect()
            log.info("connected to Slack in Socket Mode; health on port %d", http.port)
        else:
            log.info("listening for Slack on port %d at /slack/events", http.port)
        stopped.wait()
    except KeyboardInterrupt:
        pass
    except (SlackApiError, OSError) as exc:  # the first connection failed after the checks
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
        print(f"bot: could not connect to Slack in Socket Mode: {error}", file=sys.stderr)
        code = 2
    finally:
        if socket_mode is not None:
            socket_mode.close()
        http.stop()
        delivery.stop()
        service.close()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
