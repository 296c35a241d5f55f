"""Build the configured object store: S3 when configured, else the local directory."""

from __future__ import annotations

import logging
import ssl

from service.config import Config, ConfigError, is_loopback
from service.storage.base import ObjectStore
from service.storage.local import SIGNING_KEY_BYTES, LocalStore, load_or_create_signing_key
from service.storage.s3 import S3Store

log = logging.getLogger(__name__)


def build_object_store(config: Config) -> ObjectStore:
    """The store `config.storage` describes. A LocalStore's endpoint starts with `serve()`."""
    storage = config.storage
    if storage.backend == "s3":
        s3 = storage.s3
        if not s3.bucket:
            raise ConfigError(
                'config key storage.s3.bucket: required when storage.backend = "s3"; '
                "name the bucket exports go to"
            )
        return S3Store(
            bucket=s3.bucket, prefix=s3.prefix, region=s3.region, endpoint_url=s3.endpoint_url
        )
    local = storage.local
    if local.signing_key:
        if len(local.signing_key) < SIGNING_KEY_BYTES:
            raise ConfigError(
                f"config key storage.local.signing_key: shorter than {SIGNING_KEY_BYTES} "
                "characters; use a random one such as the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, or leave it empty "
                "to have one generated"
            )
        signing_key = local.signing_key.encode("utf-8")
    else:
        try:
            signing_key = load_or_create_signing_key(config.server.data_dir / "signing.key")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"config key server.data_dir: {exc}") from None
    return LocalStore(
        config.local_store_dir,
        signing_key=signing_key,
        public_url=local.public_url,
        listen=local.http_listen,
        tls=_download_tls(config),
    )


def _download_tls(config: Config) -> ssl.SSLContext | None:
    """The download endpoint speaks TLS, with the gRPC port's certificate, when it is served
    beyond loopback: signed links are bearer secrets and the files are the data itself."""
    tls = config.server.tls
    if is_loopback(config.storage.local.http_listen):
        return None
    if tls is None:
        log.warning(
            "the download endpoint %s is reachable beyond this machine without TLS; set "
            "server.tls (or serve it behind a TLS proxy named by storage.local.public_url)",
            config.storage.local.http_listen,
        )
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
