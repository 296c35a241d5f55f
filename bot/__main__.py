"""`python -m bot`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT at
/slack/events; the notification delivery loop runs beside either."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from slack_sdk import WebClient

from bot.app import build_app, with_rate_limit_retries
from bot.delivery import Delivery
from bot.http import SlackHTTPServer
from bot.service_client import ServiceClient
from bot.settings import Settings, SettingsError

log = logging.getLogger("bot")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        return 2
    client = with_rate_limit_retries(WebClient(token=settings.bot_token, base_url=settings.api_url))
    service = ServiceClient.from_settings(settings)
    app = build_app(settings, client, service)
    delivery = Delivery(
        client,
        service,
        settings.consumer,
        poll_interval_s=settings.poll_interval_s,
        lease_s=settings.lease_s,
        upload_max_bytes=settings.upload_max_bytes,
    )
    delivery.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(app, settings.app_token)
            handler.connect()
            log.info("connected to Slack in Socket Mode")
            stopped.wait()
            handler.close()
        else:
            server = SlackHTTPServer(app, port=settings.port)
            server.start()
            log.info("listening for Slack on port %d at /slack/events", server.port)
            stopped.wait()
            server.stop()
    except KeyboardInterrupt:
        pass
    finally:
        delivery.stop()
        service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
