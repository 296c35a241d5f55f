"""What proving identity costs a call: GetTaskDetail p50/p99 per way of authenticating.

Starts the service in this process on a scratch SQLite task store, submits one task, and
times `--calls` sequential GetTaskDetail calls (after `--warmup` untimed ones) for each of:

- the plain `server.token` (the figure the others are held against),
- a principal's own token (among `--principals` configured principals),
- a principal's token kept as `token_sha256`,
- an identity provider's JWT (RS256, keys cached after the first call; the JWKS is served
  over HTTP by this script),
- mutual TLS (a client certificate, no token), on a second service with `server.tls`.

    python bench/auth_bench.py [--calls 2000] [--warmup 200] [--principals 50]

Target: each within 2 ms of the plain token at p50. Loopback only; its files are removed.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reliability"))  # the test identity provider

from identity_support import Certificates, IdentityProvider, SigningKey, token  # noqa: E402

from service.config import parse_config  # noqa: E402
from service.demo import ensure_demo_database  # noqa: E402
from service.server import Service  # noqa: E402
from woxqaq.v1 import task_service_pb2 as pb  # noqa: E402
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc  # noqa: E402

SERVER_TOKEN = "bench-server-token"


def config(tmp: Path, name: str, principals: int, **extra: Any) -> dict[str, Any]:
    shop = tmp / "shop.db"
    ensure_demo_database(shop)
    people = [{"name": f"user{i}", "token": f"user{i}-token"} for i in range(principals)]
    people.append({"name": "hashed", "token_sha256": hashlib.sha256(b"hashed-token").hexdigest()})
    return {
        "server": {"data_dir": str(tmp / name), "token": SERVER_TOKEN, **extra.pop("server", {})},
        "storage": {"local": {"http_listen": "127.0.0.1:0"}},
        "datasources": {"shop": {"url": f"sqlite:///{shop}", "approvers": ["user1"]}},
        "auth": {"principals": people, **extra.pop("auth", {})},
        "scheduler": {"enabled": False},
    }


def measure(call: Callable[[], Any], calls: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def detail_call(
    channel: grpc.Channel, task_id: str, metadata: list[tuple[str, str]]
) -> Callable[[], Any]:
    stub = pb_grpc.TaskServiceStub(channel)
    request = pb.GetTaskDetailRequest(task_id=task_id)
    return lambda: stub.GetTaskDetail(request, metadata=metadata, timeout=10)


def submit(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> str:
    stub = pb_grpc.TaskServiceStub(channel)
    req = pb.SubmitTaskRequest(
        kind=pb.TASK_KIND_DATA_EXPORT,
        dsn="shop",
        ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1 AS one"), export_reason="b"),
    )
    return stub.SubmitTask(req, metadata=metadata, timeout=30).task_id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--principals", type=int, default=50)
    args = p.parse_args()

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="woxqaq-auth-bench-") as tmpdir:
        tmp = Path(tmpdir)
        idp = IdentityProvider()
        key = SigningKey("bench-key")
        idp.published = [key]
        plain = Service(
            parse_config(config(tmp, "plain", args.principals, auth={"jwt": idp.config()})),
            listen="127.0.0.1:0",
        )
        certs = Certificates(tmp / "certs")
        mutual = Service(
            parse_config(
                config(tmp, "mtls", args.principals, server={"tls": certs.tls_config(mutual=True)})
            ),
            listen="127.0.0.1:0",
        )
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{plain.start()}")
            user1 = [("authorization", "Bearer user1-token")]
            task_id = submit(channel, user1)
            jwt_token = token(key, "user1@example.com", exp=int(time.time()) + 3600)
            for label, metadata in (
                ("server.token", [("authorization", f"Bearer {SERVER_TOKEN}")]),
                (f"principal token (1 of {args.principals + 1})", user1),
                ("principal token_sha256", [("authorization", "Bearer hashed-token")]),
                ("JWT RS256, keys cached", [("authorization", f"Bearer {jwt_token}")]),
            ):
                rows.append(
                    (
                        label,
                        *measure(detail_call(channel, task_id, metadata), args.calls, args.warmup),
                    )
                )

            cert, private_key = certs.client("user1")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=certs.server_ca_file.read_bytes(),
                private_key=private_key.read_bytes(),
                certificate_chain=cert.read_bytes(),
            )
            secure = grpc.secure_channel(f"127.0.0.1:{mutual.start()}", credentials)
            tls_task = submit(secure, [])
            rows.append(
                (
                    "mutual TLS certificate",
                    *measure(detail_call(secure, tls_task, []), args.calls, args.warmup),
                )
            )
        finally:
            plain.stop(grace_s=1)
            mutual.stop(grace_s=1)
            idp.stop()

    base = rows[0][1]
    print(f"GetTaskDetail, {args.calls} sequential calls each (after {args.warmup} warm-up)\n")
    print(f"| {'credential':<34} | p50 ms | p99 ms | p50 vs server.token |")
    print(f"|{'-' * 36}|--------|--------|---------------------|")
    for label, p50, p99 in rows:
        print(f"| {label:<34} | {p50:6.2f} | {p99:6.2f} | {p50 - base:+18.2f}  |")


if __name__ == "__main__":
    main()
