"""The service under load: many clients submitting, approving and listing while exports run.

Runs `python -m service` as its own process on a scratch PostgreSQL task store, with a
PostgreSQL datasource holding a table big enough that one export takes a few seconds.

Round (twice, `--seconds` each): `--clients` client threads spread over `--procs` client
processes call SubmitTask, Approve, ListTaskDetail and GetTaskDetail in a loop, while this
process keeps `--workers` exports running (each ends, another task is submitted and
approved). Prints calls, errors, p50 and p99 per RPC, and the service's RSS before and after
each round: a leak shows as growth from one round to the next.

Drain: the service restarted with 4 workers, 20 exports started at once; all must be queued
by the pool and finish. Prints the time to drain.

    python bench/load_bench.py [--seconds 60] [--clients 50] [--procs 5] [--rows 200000]

Loopback only; everything it creates (databases, files) is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from woxqaq.v1 import task_service_pb2 as pb  # noqa: E402
from woxqaq.v1 import task_service_pb2_grpc as pb_grpc  # noqa: E402

PG = os.environ.get("WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
APPROVERS = ["alice", "bob", "carol", "dave", "erin"]
EXPORT_SQL = "SELECT id, name, amount, created, note FROM big ORDER BY id"
QUICK_SQL = "SELECT id, name FROM big WHERE id < 100"
DONE = (pb.TASK_STATUS_EXECUTE_SUCCESS, pb.TASK_STATUS_EXECUTE_FAILED)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- set-up ----------------------------------------------------------------------------------


def create_database(name: str) -> str:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return sa.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def fill_source(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), "
            "created timestamptz, note text)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO big SELECT g, 'customer ' || g, g * 1.25, now() - g * interval '1 s', "
            f"md5(g::text) FROM generate_series(1, {rows}) g"
        )
    engine.dispose()


class ServiceProcess:
    def __init__(self, home: Path, store: str, source: str, workers: int) -> None:
        self.port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        config = home / "woxqaq.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\ndata_dir = "{home / "data"}"\n'
            f'[task_store]\nurl = "{store}"\n'
            f"[export]\nworkers = {workers}\n"
            f'[storage.local]\nhttp_listen = "127.0.0.1:{free_port()}"\n'
            "[scheduler]\nenabled = false\n"
            f'[datasources.src]\nurl = "{source}"\napprovers = {json.dumps(APPROVERS)}\n'
        )
        env = {**os.environ, "WOXQAQ_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
        self.log = (home / "service.stderr").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=self.log, stderr=self.log
        )
        self.addr = f"127.0.0.1:{self.port}"
        with grpc.insecure_channel(self.addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- clients ---------------------------------------------------------------------------------


class Client:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = pb_grpc.TaskServiceStub(channel)

    def call(self, rpc: str, user: str, request: Any) -> Any:
        return getattr(self.stub, rpc)(request, metadata=[("x-woxqaq-user", user)], timeout=30)

    def submit(self, user: str, sql: str, executor: int) -> pb.SubmitTaskResponse:
        ded = pb.DataExportDetail(export_reason="load", exector=executor)
        ded.ebs.statement = sql
        req = pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_EXPORT, dsn="src", ded=ded)
        return self.call("SubmitTask", user, req)

    def approve(self, approver: str, task_id: str) -> pb.ApproveResponse:
        return self.call(
            "Approve", approver, pb.ApproveRequest(task_id=int(task_id), approver=approver)
        )

    def detail(self, task_id: str) -> pb.GetTaskDetailResponse:
        return self.call("GetTaskDetail", "auditor", pb.GetTaskDetailRequest(task_id=task_id))


def client_thread(addr: str, seconds: float, seed: int) -> dict[str, Any]:
    """One user's loop: submit (waits for an executor, so no export starts), approve one of
    its earlier tasks, list, show; latencies per RPC and error counts."""
    rnd = random.Random(seed)
    user = f"user{seed:03d}"
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    pending: list[str] = []
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(addr) as channel:
        c = Client(channel)
        while time.monotonic() < deadline:
            roll = rnd.random()
            if roll < 0.3 or not pending:
                rpc, fn = "SubmitTask", lambda: c.submit(user, QUICK_SQL, pb.EXEC_COMMITTER)
            elif roll < 0.5:
                task_id = pending.pop()
                rpc, fn = "Approve", lambda t=task_id: c.approve(rnd.choice(APPROVERS), t)
            elif roll < 0.8:
                role = rnd.choice([0, pb.TASK_ROLE_COMMITTER, pb.TASK_ROLE_TO_APPROVE])
                req = pb.ListTaskRequest(current=1, page_size=20, role=role)
                rpc, fn = "ListTaskDetail", lambda r=req: c.call("ListTaskDetail", user, r)
            else:
                task_id = rnd.choice(pending)
                rpc, fn = "GetTaskDetail", lambda t=task_id: c.detail(t)
            t0 = time.perf_counter()
            try:
                out = fn()
                lat[rpc].append(time.perf_counter() - t0)
                if rpc == "SubmitTask" and out.ok:
                    pending.append(out.task_id)
            except grpc.RpcError:
                errors[rpc] += 1
    return {"lat": dict(lat), "errors": dict(errors)}


def client_process(addr: str, seconds: float, threads: int, first: int) -> dict[str, Any]:
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda i: client_thread(addr, seconds, first + i), range(threads)))
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for r in results:
        for k, v in r["lat"].items():
            lat[k] += v
        for k, v in r["errors"].items():
            errors[k] += v
    return {"lat": dict(lat), "errors": dict(errors)}


class ExportDriver:
    """Keeps `slots` exports running: each slot submits, approves (auto-run), waits, repeats."""

    def __init__(self, addr: str, slots: int) -> None:
        self.addr, self.slots = addr, slots
        self.stop = threading.Event()
        self.finished: list[tuple[int, float]] = []  # (status, seconds)
        self.errors = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._slot, args=(i,)) for i in range(slots)]

    def __enter__(self) -> ExportDriver:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(120)

    def _slot(self, i: int) -> None:
        with grpc.insecure_channel(self.addr) as channel:
            c = Client(channel)
            while not self.stop.is_set():
                try:
                    task_id = c.submit(f"exporter{i}", EXPORT_SQL, pb.EXEC_AUTO).task_id
                    t0 = time.monotonic()
                    c.approve(APPROVERS[i % len(APPROVERS)], task_id)
                    while (status := c.detail(task_id).task.status) not in DONE:
                        time.sleep(0.2)
                    with self._lock:
                        self.finished.append((status, time.monotonic() - t0))
                except grpc.RpcError:
                    with self._lock:
                        self.errors += 1
                    time.sleep(0.5)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] * 1000 if s else 0.0


def run_round(svc: ServiceProcess, args: argparse.Namespace, n: int) -> None:
    per = args.clients // args.procs
    ctx = mp.get_context("spawn")  # no gRPC state crosses a fork
    jobs = [(svc.addr, args.seconds, per, n * 1000 + p * per) for p in range(args.procs)]
    with ExportDriver(svc.addr, args.workers) as exports, ctx.Pool(args.procs) as pool:
        parts = pool.starmap(client_process, jobs)
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for part in parts:
        for k, v in part["lat"].items():
            lat[k] += v
        for k, v in part["errors"].items():
            errors[k] += v
    print(f"\nround {n}: {args.clients} clients for {args.seconds:g} s, ", end="")
    print(f"{args.workers} exports kept running")
    print(f"{'rpc':<16}{'calls':>8}{'errors':>8}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for rpc in ("SubmitTask", "Approve", "ListTaskDetail", "GetTaskDetail"):
        v = lat.get(rpc, [])
        print(
            f"{rpc:<16}{len(v):>8}{errors.get(rpc, 0):>8}{len(v) / args.seconds:>9.1f}"
            f"{pct(v, 0.5):>9.1f}{pct(v, 0.99):>9.1f}"
        )
    ok = sum(1 for s, _ in exports.finished if s == pb.TASK_STATUS_EXECUTE_SUCCESS)
    took = [t for _, t in exports.finished]
    print(
        f"exports finished: {len(exports.finished)} ({ok} succeeded, driver errors "
        f"{exports.errors}); approve→done p50 {pct(took, 0.5) / 1000:.1f} s, "
        f"max {max(took, default=0):.1f} s"
    )


def drain(home: Path, store: str, source: str) -> None:
    svc = ServiceProcess(home / "drain", store, source, workers=4)
    try:
        with grpc.insecure_channel(svc.addr) as channel:
            c = Client(channel)
            ids = [c.submit("drainer", EXPORT_SQL, pb.EXEC_COMMITTER).task_id for _ in range(20)]
            for t in ids:
                c.approve("alice", t)
            t0 = time.monotonic()
            with ThreadPoolExecutor(20) as pool:
                runs = list(
                    pool.map(
                        lambda t: c.call(
                            "Execute",
                            "drainer",
                            pb.ExecuteRequest(task_id=int(t), executor="drainer"),
                        ),
                        ids,
                    )
                )
            started = time.monotonic() - t0
            deadline = time.monotonic() + 900
            statuses: list[int] = []
            while time.monotonic() < deadline:
                statuses = [c.detail(t).task.status for t in ids]
                if all(s in DONE for s in statuses):
                    break
                time.sleep(0.25)
            took = time.monotonic() - t0
            ok = sum(s == pb.TASK_STATUS_EXECUTE_SUCCESS for s in statuses)
            print(
                f"\ndrain: 20 exports started at once on 4 workers: {sum(r.ok for r in runs)} "
                f"accepted in {started:.2f} s, {ok}/20 succeeded, all done after {took:.1f} s"
            )
    finally:
        svc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--procs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    store_db, source_db = f"woxqaq_lb_{tag}", f"woxqaq_lbsrc_{tag}"
    with tempfile.TemporaryDirectory(prefix="woxqaq-load-") as tmp:
        home = Path(tmp)
        try:
            store, source = create_database(store_db), create_database(source_db)
            fill_source(source, args.rows)
            svc = ServiceProcess(home / "load", store, source, args.workers)
            try:
                time.sleep(1)
                rss = [("start", svc.rss_mib())]
                for n in range(1, args.rounds + 1):
                    run_round(svc, args, n)
                    rss.append((f"after round {n}", svc.rss_mib()))
                print("\nservice RSS: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss))
            finally:
                svc.stop()
            drain(home, store, source)
        finally:
            drop_database(store_db)
            drop_database(source_db)


if __name__ == "__main__":
    main()
