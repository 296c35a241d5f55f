"""An identity provider for tests and benches: signing keys, a JWKS endpoint served over
real HTTP on a free port, tokens; and certificates made with trustme."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.test/"
AUDIENCE = "woxqaq"


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


class IdentityProvider:
    """Publishes `published` keys at `jwks_url`; counts how often they were fetched."""

    def __init__(self) -> None:
        self.published: list[SigningKey] = []
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in provider.published]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The `auth.jwt` section pointing at this provider."""
        return {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_url": self.jwks_url,
            "user_claim": "email",
            "jwks_refresh_cooldown_s": 0,
            **overrides,
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def token(key: SigningKey, user: str = "alice@example.com", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "email": user,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})


class Certificates:
    """A server CA and certificate for 127.0.0.1, and a CA that signs client certificates."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.server_ca = trustme.CA()
        server = self.server_ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(self.server_cert), append=True)
        server.private_key_pem.write_to_path(str(self.server_key))
        self.server_ca_file = directory / "ca.pem"
        self.server_ca.cert_pem.write_to_path(str(self.server_ca_file))
        self.client_ca = trustme.CA()
        self.client_ca_file = directory / "clients-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))

    def tls_config(self, *, mutual: bool) -> dict[str, str]:
        """The `server.tls` section."""
        section = {"cert_file": str(self.server_cert), "key_file": str(self.server_key)}
        if mutual:
            section["client_ca_file"] = str(self.client_ca_file)
        return section

    def client(self, name: str, ca: trustme.CA | None = None) -> tuple[Path, Path]:
        """A client certificate whose common name is `name`, and its key (files)."""
        leaf = (ca or self.client_ca).issue_cert(f"{name}.clients.test", common_name=name)
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        return cert, key
