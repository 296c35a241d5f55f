"""Proving who calls, over a real socket: an identity provider's JWTs checked against its
JWKS (served by the test over HTTP), TLS on the gRPC port, and client certificates."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from identity_support import Certificates, IdentityProvider, SigningKey, token
from service_support import shop_config

from bot.service_client import ServiceClient
from bot.settings import Settings, SettingsError
from service import cli
from service.config import parse_config
from service.server import Service
from woxqaq.v1 import identity_service_pb2 as ipb
from woxqaq.v1 import identity_service_pb2_grpc as ipb_grpc
from woxqaq.v1 import task_service_pb2 as pb
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc

Start = Callable[..., tuple[Service, str]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a service with the shop datasource and `overrides`; returns it and its address."""
    started: list[Service] = []

    def run(**overrides: Any) -> tuple[Service, str]:
        service = Service(parse_config(shop_config(tmp_path, **overrides)), listen="127.0.0.1:0")
        started.append(service)
        return service, f"127.0.0.1:{service.start()}"

    yield run
    for service in started:
        service.stop(grace_s=2)


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


def whoami(channel: grpc.Channel, metadata: list[tuple[str, str]] = ()) -> ipb.WhoAmIResponse:  # type: ignore[assignment]
    return ipb_grpc.IdentityServiceStub(channel).WhoAmI(
        ipb.WhoAmIRequest(), metadata=list(metadata), timeout=10
    )


def refusal(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details() or ""


def bearer(value: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {value}")]


# -- JWT ------------------------------------------------------------------------------------


@pytest.fixture
def jwt_service(start: Start, idp: IdentityProvider) -> Iterator[tuple[grpc.Channel, SigningKey]]:
    key = SigningKey("key-1")
    idp.published = [key]
    _, addr = start(auth={"jwt": idp.config()})
    channel = grpc.insecure_channel(addr)
    yield channel, key
    channel.close()


def test_a_valid_jwt_is_its_user_and_acts_as_itself(jwt_service: Any) -> None:
    channel, key = jwt_service
    me = whoami(channel, bearer(token(key, "alice@example.com")))
    assert (me.principal, me.method, me.user) == ("alice@example.com", "jwt", "alice@example.com")
    tasks = pb_grpc.TaskServiceStub(channel)
    md = [*bearer(token(key, "zoe@example.com")), ("x-woxqaq-user", "alice")]
    code, _ = refusal(lambda: tasks.ListTaskDetail(pb.ListTaskRequest(), metadata=md, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "case, words",
    [
        ("expired", "expired"),
        ("wrong audience", "not for this service"),
        ("wrong issuer", "not from https://idp.test/"),
        ("bad signature", "invalid token"),
        ("alg none", "'none'"),
        ("shared secret", "'HS256'"),
        ("no user claim", "'email'"),
        ("no expiry", "invalid token"),
    ],
)
def test_a_bad_jwt_is_unauthenticated(jwt_service: Any, case: str, words: str) -> None:
    channel, key = jwt_service
    now = int(time.time())
    forger = SigningKey(key.kid)  # same key id, another private key
    bad = {
        "expired": lambda: token(key, exp=now - 3600, iat=now - 7200),
        "wrong audience": lambda: token(key, aud="another-service"),
        "wrong issuer": lambda: token(key, iss="https://evil.test/"),
        "bad signature": lambda: token(forger),
        "alg none": lambda: jwt.encode(
            {"iss": "https://idp.test/", "aud": "woxqaq", "email": "a", "exp": now + 60},
            None,
            algorithm="none",
        ),
        # The public key used as an HMAC secret: the classic algorithm confusion.
        "shared secret": lambda: _hs256_with(key),
        "no user claim": lambda: token(key, email=""),
        "no expiry": lambda: _without_exp(key),
    }[case]()
    code, details = refusal(lambda: whoami(channel, bearer(bad)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert words in details, details
    assert bad not in details


def _hs256_with(key: SigningKey) -> str:
    import hashlib
    import hmac
    import json
    from base64 import urlsafe_b64encode

    def b64(data: bytes) -> bytes:
        return urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": "https://idp.test/", "aud": "woxqaq", "email": "a"}).encode())
    secret = json.dumps(key.jwk()).encode()
    signature = b64(hmac.new(secret, header + b"." + body, hashlib.sha256).digest())
    return (header + b"." + body + b"." + signature).decode()


def _without_exp(key: SigningKey) -> str:
    payload = {"iss": "https://idp.test/", "aud": "woxqaq", "email": "alice@example.com"}
    return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})


def test_an_unknown_key_id_is_refused_until_the_provider_publishes_it(
    jwt_service: Any, idp: IdentityProvider
) -> None:
    channel, old = jwt_service
    assert whoami(channel, bearer(token(old))).user == "alice@example.com"  # keys now cached
    fetches = idp.fetches
    cached = token(old, "bob@example.com")
    assert whoami(channel, bearer(cached)).user == "bob@example.com"
    assert idp.fetches == fetches  # a known key is not fetched again

    new = SigningKey("key-2")
    signed_with_new = token(new, "carol@example.com")
    code, details = refusal(lambda: whoami(channel, bearer(signed_with_new)))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not publish" in details
    assert idp.fetches == fetches + 1  # the unknown kid made it look once

    idp.published = [new]  # rotation: the provider publishes the new key, drops the old
    assert whoami(channel, bearer(signed_with_new)).user == "carol@example.com"
    code, _ = refusal(lambda: whoami(channel, bearer(token(old))))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_an_unknown_key_id_refetches_at_most_once_per_cooldown(
    start: Start, idp: IdentityProvider
) -> None:
    key = SigningKey("key-1")
    idp.published = [key]
    _, addr = start(auth={"jwt": idp.config(jwks_refresh_cooldown_s=60)})
    with grpc.insecure_channel(addr) as channel:
        whoami(channel, bearer(token(key)))
        fetches = idp.fetches
        for i in range(5):
            stranger = SigningKey(f"made-up-{i}")
            assert refusal(lambda: whoami(channel, bearer(token(stranger))))[0] == (
                grpc.StatusCode.UNAUTHENTICATED
            )
        assert idp.fetches <= fetches + 1


# -- TLS and mutual TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


def tls_channel(
    addr: str, certs: Certificates, client: tuple[Path, Path] | None = None
) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs.server_ca_file.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None,
    )
    return grpc.secure_channel(addr, credentials)


def test_tls_carries_the_token_and_plain_text_is_not_served(
    start: Start, certs: Certificates
) -> None:
    _, addr = start(
        server={"tls": certs.tls_config(mutual=False)},
        auth={"principals": [{"name": "alice", "token": "alice-secret"}]},
    )
    with tls_channel(addr, certs) as channel:
        me = whoami(channel, bearer("alice-secret"))
        assert (me.principal, me.method) == ("alice", "token")
    with grpc.insecure_channel(addr) as plain:
        code, _ = refusal(lambda: whoami(plain, bearer("alice-secret")))
        assert code == grpc.StatusCode.UNAVAILABLE
    wrong_ca = Certificates(certs.dir / "other")  # a server this client does not trust
    with tls_channel(addr, wrong_ca) as channel:
        assert refusal(lambda: whoami(channel))[0] == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_is_its_principal(start: Start, certs: Certificates) -> None:
    _, addr = start(
        server={"tls": certs.tls_config(mutual=True)},
        auth={"principals": [{"name": "bot", "acts_for": ["*"]}]},
    )
    with tls_channel(addr, certs, certs.client("alice")) as channel:
        me = whoami(channel)
        assert (me.principal, me.method, me.user) == ("alice", "certificate", "alice")
        md = [("x-woxqaq-user", "bob")]
        tasks = pb_grpc.TaskServiceStub(channel)
        code, _ = refusal(lambda: tasks.ListTaskDetail(pb.ListTaskRequest(), metadata=md))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    with tls_channel(addr, certs, certs.client("bot")) as channel:
        me = whoami(channel, [("x-woxqaq-user", "U0APPR1")])
        assert (me.principal, me.user) == ("bot", "U0APPR1")
    with tls_channel(addr, certs) as channel:  # no certificate: the handshake fails
        assert refusal(lambda: whoami(channel))[0] == grpc.StatusCode.UNAVAILABLE
    stranger = certs.client("mallory", ca=Certificates(certs.dir / "evil").client_ca)
    with tls_channel(addr, certs, stranger) as channel:  # signed by a CA nobody configured
        assert refusal(lambda: whoami(channel))[0] == grpc.StatusCode.UNAVAILABLE


def test_the_cli_over_tls_with_a_token_and_downloads_over_https(
    start: Start, certs: Certificates, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    principals = [
        {"name": "zoe", "token": "zoe-secret"},
        {"name": "alice", "token": "alice-secret"},
    ]
    service, addr = start(
        server={"tls": certs.tls_config(mutual=False)},
        auth={"principals": principals},
        # Beyond loopback, the download endpoint speaks TLS with the same certificate.
        storage={"local": {"http_listen": "0.0.0.0:0"}},
    )

    def woxqaq(token: str, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = cli.main(
            ["--addr", addr, "--token", token, "--ca-file", str(certs.server_ca_file), *args]
        )
        out = capsys.readouterr()
        return rc, out.out + out.err

    assert woxqaq("zoe-secret", "whoami") == (0, "zoe (token)\n")
    rc, out = woxqaq("zoe-secret", "--user", "alice", "whoami")
    assert rc == cli.EXIT_REFUSED and "PERMISSION_DENIED" in out
    rc, out = woxqaq("zoe-secret", "submit", "--dsn", "shop", "--sql", "SELECT 1 AS one")
    assert rc == 0, out
    task_id = re.search(r"\d+", out).group(0)  # type: ignore[union-attr]
    assert woxqaq("zoe-secret", "approve", task_id)[0] == cli.EXIT_REFUSED  # her own task
    assert woxqaq("alice-secret", "approve", task_id)[0] == 0
    deadline = time.monotonic() + 30
    while "EXECUTE_SUCCESS" not in woxqaq("zoe-secret", "show", task_id)[1]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    rc, out = woxqaq("zoe-secret", "url", task_id)
    assert rc == 0 and out.startswith("https://127.0.0.1:"), out
    target = tmp_path / "got.csv"
    rc, out = woxqaq("zoe-secret", "download", task_id, "-o", str(target))
    assert rc == 0, out
    assert target.read_text(encoding="utf-8").splitlines() == ["one", "1"]
    link = woxqaq("zoe-secret", "url", task_id)[1].split()[0]
    with pytest.raises(urllib.error.URLError):  # without the service's CA: not trusted
        urllib.request.urlopen(link, timeout=10)
    port = service.objects.base_url.rpartition(":")[2]  # type: ignore[attr-defined]
    with pytest.raises(OSError):  # plain HTTP is not served (the connection is closed)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/files/x", timeout=10)


def test_the_bot_connects_with_its_token_and_the_services_ca(
    start: Start, certs: Certificates
) -> None:
    _, addr = start(
        server={"tls": certs.tls_config(mutual=False)},
        auth={"principals": [{"name": "bot", "token": "bot-secret", "acts_for": ["*"]}]},
    )
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "WOXQAQ_SERVICE_ADDR": addr,
        "WOXQAQ_SERVICE_TOKEN": "bot-secret",
        "WOXQAQ_SERVICE_CA_FILE": str(certs.server_ca_file),
    }
    client = ServiceClient.from_settings(Settings.from_env(env))
    try:
        assert [d.name for d in client.datasources()] == ["shop"]
        assert client.list_tasks("U0APPR1").ok  # acting for a Slack user
    finally:
        client.close()
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**env, "WOXQAQ_SERVICE_CA_FILE": str(certs.dir / "missing.pem")})
    assert "WOXQAQ_SERVICE_CA_FILE" in str(info.value)


def test_on_loopback_with_nothing_to_check_callers_say_who_they_are(
    start: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    _, addr = start()
    with grpc.insecure_channel(addr) as channel:
        me = whoami(channel, [("x-woxqaq-user", "alice"), ("authorization", "Bearer stray")])
        assert (me.principal, me.method, me.user, list(me.acts_for)) == ("", "none", "alice", ["*"])
    assert cli.main(["--addr", addr, "--user", "alice", "whoami"]) == 0
    assert capsys.readouterr().out == "alice (the service checks no credentials)\n"
