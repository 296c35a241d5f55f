"""Identity settings (CONTRACT §13): bad ones stop start-up with one line naming the key,
and a service reachable beyond loopback needs a way to authenticate its callers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import ConfigError, parse_config
from service.server import Service

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("auth", "words"),
    [
        ({"principals": [{"name": "a", "token_sha256": "abc"}]}, "not a SHA-256 hex digest"),
        (
            {"principals": [{"name": "a", "token": "x"}, {"name": "a", "token": "y"}]},
            "'a' is configured twice",
        ),
        ({"principals": [{"name": "a", "token": "x", "token_sha256": "0" * 64}]}, "not both"),
        ({"principals": [{"name": "a"}]}, "has no token or token_sha256"),
        ({"principals": [{"name": "", "token": "x"}]}, "auth.principals.0.name"),
        (
            {
                "jwt": {
                    "issuer": "i",
                    "audience": "a",
                    "jwks_url": "http://x/",
                    "algorithms": ["none"],
                }
            },
            "auth.jwt.algorithms.0",
        ),
        (
            {
                "jwt": {
                    "issuer": "i",
                    "audience": "a",
                    "jwks_url": "http://x/",
                    "algorithms": ["HS256"],
                }
            },
            "auth.jwt.algorithms.0",
        ),
        ({"jwt": {"issuer": "i", "audience": "a", "jwks_url": "file:///etc/passwd"}}, "jwks_url"),
    ],
)
def test_bad_identity_settings_name_the_key(auth: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        parse_config({"auth": auth})
    assert words in str(info.value) and "\n" not in str(info.value)


def test_tls_files_must_exist(tmp_path: Path) -> None:
    tls = {"cert_file": str(tmp_path / "no.pem"), "key_file": "k"}
    cfg = parse_config({"server": {"data_dir": str(tmp_path), "tls": tls}})
    with pytest.raises(ConfigError) as info:
        Service(cfg, listen="127.0.0.1:0")
    assert "server.tls.cert_file" in str(info.value) and "does not exist" in str(info.value)


def test_tokens_are_not_shown_in_the_config_repr() -> None:
    cfg = parse_config(
        {
            "server": {"token": "server-secret"},
            "auth": {"principals": [{"name": "a", "token": "t0k3n-secret"}]},
        }
    )
    assert "server-secret" not in repr(cfg) and "t0k3n-secret" not in repr(cfg)


def test_listening_everywhere_without_authentication_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "woxqaq.toml"
    config.write_text(
        f'[server]\nlisten = "0.0.0.0:0"\ndata_dir = "{tmp_path / "data"}"\n'
        '[storage.local]\nhttp_listen = "127.0.0.1:0"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env={**os.environ, "WOXQAQ_CONFIG": str(config), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.allow_unauthenticated" in lines[0], proc.stderr
