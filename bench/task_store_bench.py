"""SubmitTask and ListTaskDetail latency with 100,000 tasks in a PostgreSQL task store.

Runs the real service (`python -m service`, its own process, as deployed) with a fresh
database on the server at WOXQAQ_BENCH_PG_URL (default: the local PostgreSQL), fills the
store's tables, then times gRPC calls from this process, one call at a time. Prints
p50 / p99 / max per call shape.

    python bench/task_store_bench.py [--tasks 100000] [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.demo import ensure_demo_database  # noqa: E402
from woxqaq.v1 import task_service_pb2 as pb  # noqa: E402
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc  # noqa: E402

PG = os.environ.get("WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
USERS = [f"user{i:03d}" for i in range(200)]
APPROVERS = ["alice", "bob", "carol", "dave", "erin"]


def fill(url: str, tasks: int) -> None:
    """Insert `tasks` tasks spread over users, datasources and states, with votes and events."""
    engine = sa.create_engine(url)
    spec = '{"statement": "SELECT id, amount FROM orders WHERE status = \'paid\'", "type": 1}'
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"""
            INSERT INTO tasks (name, kind, datasource, database, submitter, status, executor_mode,
                               spec, trigger, cron, timezone, channel, required_approvals,
                               precheck_messages, created_at, updated_at)
            SELECT '', 2, CASE WHEN mod(g, 3) = 0 THEN 'billing' ELSE 'shop' END, '',
                   'user' || lpad(mod(g, 200)::text, 3, '0'),
                   (ARRAY[5, 5, 6, 9, 9, 9, 10, 7, 4, 11])[1 + mod(g, 10)], 3,
                   %(spec)s::json, 1, '', 'UTC', '', 1, '[]'::json,
                   now() - (g || ' seconds')::interval, now()
            FROM generate_series(1, {tasks}) AS g
            """,
            {"spec": spec},
        )
        conn.exec_driver_sql(
            """
            INSERT INTO task_votes (task_id, voter, approve, comment, created_at)
            SELECT id, (ARRAY['alice','bob','carol','dave','erin'])[1 + mod(id, 5)], true, '', now()
            FROM tasks WHERE status IN (6, 9, 10)
            """
        )
        conn.exec_driver_sql(
            """
            INSERT INTO task_events (task_id, actor, action, comment, created_at)
            SELECT id, submitter, 'submit', '', created_at FROM tasks
            """
        )
    # Steady state: autovacuum sets the visibility map of an insert-heavy table, which lets
    # count(*) for ListTaskDetail's `total` use index-only scans. A bulk load needs it by hand.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn, calls: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(min(20, calls)):  # warm up connections and plans
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    base = sa.engine.make_url(PG)
    name = f"woxqaq_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = base.set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="woxqaq-bench-"))
    shop = tmp / "shop.db"
    ensure_demo_database(shop)
    port = _free_port()
    (tmp / "woxqaq.toml").write_text(
        f"""
[server]
listen = "127.0.0.1:{port}"
data_dir = "{tmp / "data"}"
[task_store]
url = "{url}"
[storage.local]
http_listen = "127.0.0.1:{_free_port()}"
[datasources.shop]
url = "sqlite:///{shop}"
approvers = {APPROVERS!r}
[datasources.billing]
url = "sqlite:///{shop}"
approvers = {APPROVERS[:2]!r}
""".replace("'", '"')
    )
    env = {**os.environ, "WOXQAQ_CONFIG": str(tmp / "woxqaq.toml"), "WOXQAQ_LOG_LEVEL": "WARNING"}
    service = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)  # migrations have run
        t0 = time.perf_counter()
        fill(url, args.tasks)
        print(f"filled {args.tasks:,} tasks in {time.perf_counter() - t0:.1f} s")
        stub = pb_grpc.TaskServiceStub(channel)

        def call(method: str, request, user: str = "user007"):  # type: ignore[no-untyped-def]
            return lambda: getattr(stub, method)(
                request, metadata=[("x-woxqaq-user", user)], timeout=30
            )

        submit = pb.SubmitTaskRequest(
            kind=pb.TASK_KIND_DATA_EXPORT,
            dsn="shop",
            ded=pb.DataExportDetail(
                ebs=pb.ExportBySQL(statement="SELECT id, amount FROM orders WHERE status = 'paid'"),
                export_reason="bench",
                exector=pb.EXEC_COMMITTER,
            ),
        )
        shapes = [
            ("SubmitTask (SQL, pre-checked)", call("SubmitTask", submit)),
            ("ListTaskDetail page 1", call("ListTaskDetail", pb.ListTaskRequest())),
            ("ListTaskDetail page 200", call("ListTaskDetail", pb.ListTaskRequest(current=200))),
            (
                "ListTaskDetail status=APPROVING",
                call("ListTaskDetail", pb.ListTaskRequest(status=pb.TASK_STATUS_APPROVING)),
            ),
            (
                "ListTaskDetail dsn=billing",
                call("ListTaskDetail", pb.ListTaskRequest(dsn="billing")),
            ),
            (
                "ListTaskDetail role=COMMITTER",
                call("ListTaskDetail", pb.ListTaskRequest(role=pb.TASK_ROLE_COMMITTER)),
            ),
            (
                "ListTaskDetail role=TO_APPROVE",
                call("ListTaskDetail", pb.ListTaskRequest(role=pb.TASK_ROLE_TO_APPROVE), "alice"),
            ),
            (
                "ListTaskDetail role=APPROVED",
                call("ListTaskDetail", pb.ListTaskRequest(role=pb.TASK_ROLE_APPROVED), "alice"),
            ),
            (
                "ListTaskDetail role=TO_EXECUTE",
                call("ListTaskDetail", pb.ListTaskRequest(role=pb.TASK_ROLE_TO_EXECUTE)),
            ),
            ("GetTaskDetail", call("GetTaskDetail", pb.GetTaskDetailRequest(task_id="50000"))),
        ]
        print(f"\n{'call':<36} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, fn in shapes:
            ms = sorted(timed(fn, args.calls))
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(
                f"{label:<36} {len(ms):>5} {statistics.median(ms):>8.2f} {p99:>8.2f} {ms[-1]:>8.2f}"
            )
        channel.close()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
