"""The bot's configuration: one object read from the environment and passed down."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

SLACK_API_URL = "https://slack.com/api/"


class SettingsError(Exception):
    """A missing or malformed environment variable, named with what to set."""


@dataclass(frozen=True)
class Settings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(default="", repr=False)  # HTTP mode only
    app_token: str = field(default="", repr=False)
    api_url: str = SLACK_API_URL
    service_addr: str = "127.0.0.1:50051"
    service_token: str = field(default="", repr=False)
    # TLS to the service: the CA its certificate is checked with; for mutual TLS, the bot's
    # own certificate and key (its common name is the bot's principal).
    service_ca_file: str = ""
    service_cert_file: str = ""
    service_key_file: str = field(default="", repr=False)
    port: int = 3000
    # Who holds delivery leases: unique per process so two replicas never share one.
    consumer: str = field(default_factory=lambda: f"bot-{socket.gethostname()}-{os.getpid()}")
    poll_interval_s: float = 1.0
    lease_s: int = 120
    # A scheduled run's file up to this size is also uploaded to its channel; 0: links only.
    upload_max_bytes: int = 1024 * 1024
    # While Slack refuses the bot token, how often to ask whether it works again.
    token_check_interval_s: float = 30.0

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        if not env.get("SLACK_BOT_TOKEN"):
            raise SettingsError(
                "set SLACK_BOT_TOKEN: the Bot User OAuth Token (xoxb-…) on the Slack app's "
                "OAuth & Permissions page"
            )
        # Slack signs HTTP requests only; in Socket Mode the app-level token is the proof.
        if not env.get("SLACK_APP_TOKEN") and not env.get("SLACK_SIGNING_SECRET"):
            raise SettingsError(
                "set SLACK_APP_TOKEN (xapp-…, for Socket Mode) or SLACK_SIGNING_SECRET (for "
                "HTTP mode): both are on the Slack app's Basic Information page"
            )
        port_text = env.get("PORT", "3000")
        try:
            port = int(port_text)
        except ValueError:
            raise SettingsError(f"PORT must be a number, not {port_text!r}") from None
        upload_text = env.get("WOXQAQ_SLACK_UPLOAD_MAX_BYTES", str(1024 * 1024))
        try:
            upload_max_bytes = max(0, int(upload_text))
        except ValueError:
            raise SettingsError(
                f"WOXQAQ_SLACK_UPLOAD_MAX_BYTES must be a number of bytes, not {upload_text!r}"
            ) from None
        api_url = env.get("SLACK_API_URL") or SLACK_API_URL
        tls_files = {
            name: env.get(name, "")
            for name in ("WOXQAQ_SERVICE_CA_FILE", "WOXQAQ_SERVICE_CERT", "WOXQAQ_SERVICE_KEY")
        }
        for name, path in tls_files.items():
            if path and not os.path.isfile(path):
                raise SettingsError(f"{name} names {path}, which is not a readable file")
        if bool(tls_files["WOXQAQ_SERVICE_CERT"]) != bool(tls_files["WOXQAQ_SERVICE_KEY"]):
            raise SettingsError("set WOXQAQ_SERVICE_CERT and WOXQAQ_SERVICE_KEY together")
        return cls(
            bot_token=env["SLACK_BOT_TOKEN"],
            signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            app_token=env.get("SLACK_APP_TOKEN", ""),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            service_addr=env.get("WOXQAQ_SERVICE_ADDR") or "127.0.0.1:50051",
            service_token=env.get("WOXQAQ_SERVICE_TOKEN", ""),
            service_ca_file=tls_files["WOXQAQ_SERVICE_CA_FILE"],
            service_cert_file=tls_files["WOXQAQ_SERVICE_CERT"],
            service_key_file=tls_files["WOXQAQ_SERVICE_KEY"],
            port=port,
            upload_max_bytes=upload_max_bytes,
        )
