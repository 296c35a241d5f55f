"""Real servers for the storage tests: moto's S3 over HTTP, and our own download endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from service.config import parse_config
from service.storage import LocalStore, S3Store, build_object_store

# Fake credentials, recognisable so that tests can assert they never leak into a message.
ACCESS_KEY = "AKIAWOXQAQTESTACCESS"
SECRET_KEY = "woxqaq-test-secret-never-shown"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, str]:
    """Credentials from the environment only, as the service takes them; no ~/.aws files.

    Returns (access key id, secret key) so that tests can check neither leaks.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return ACCESS_KEY, SECRET_KEY


@pytest.fixture
def s3_client(s3_endpoint: str, aws_env: tuple[str, str]) -> Iterator[Any]:
    """A plain boto3 client on the moto server, to look behind the store's back."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    yield client
    client.close()


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"woxqaq-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_endpoint: str, bucket: str) -> Iterator[S3Store]:
    store = S3Store(bucket=bucket, prefix="exports/", region="us-east-1", endpoint_url=s3_endpoint)
    yield store
    store.close()


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[LocalStore]:
    """The default store as the service builds it, its endpoint on a free loopback port."""
    config = parse_config(
        {
            "server": {"data_dir": str(tmp_path)},
            "storage": {"local": {"http_listen": "127.0.0.1:0"}},
        }
    )
    store = build_object_store(config)
    assert isinstance(store, LocalStore)
    store.serve()
    yield store
    store.close()
