"""The outbox's delivery path on a PostgreSQL task store: Pull and Ack latency.

Fills a fresh database with tasks of two notifications each, then drains the outbox as
the bot does: pull a batch, acknowledge each notification with the message it posted,
until nothing is left (a task's second notification is claimable once its first is acked).
Calls the use case in this process, not over gRPC, so the figures are the outbox's and
the store's. Prints p50 / p99 / max of a pull and of an ack, and the whole drain; the best
of --repeats runs (each on its own fresh database).

    python bench/outbox_bench.py [--tasks 2000] [--batch 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.app.outbox import Outbox  # noqa: E402
from service.config import Config  # noqa: E402
from service.datasources import DatasourceRegistry  # noqa: E402
from service.domain.model import (  # noqa: E402
    ExportSpec,
    MessageRef,
    Schedule,
    TaskKind,
    TaskStatus,
)
from service.store.repository import TaskStore  # noqa: E402

PG = os.environ.get("WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fill(store: TaskStore, tasks: int) -> None:
    for start in range(0, tasks, 500):
        with store.write() as tx:
            for i in range(start, min(start + 500, tasks)):
                task_id = tx.add_task(
                    name=f"bench {i}",
                    kind=TaskKind.DATA_EXPORT,
                    datasource="bench",
                    submitter=f"user{i % 200:03d}",
                    spec=ExportSpec(statement="SELECT 1"),
                    schedule=Schedule(),
                    required_approvals=1,
                    status=TaskStatus.APPROVING,
                )
                tx.notify(task_id, "approval_requested", actor="bench")
                tx.notify(task_id, "approved", actor="bench")


def drain(outbox: Outbox, batch: int) -> tuple[list[float], list[float], float, int]:
    pulls: list[float] = []
    acks: list[float] = []
    delivered = 0
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        leased = outbox.pull("bench", batch)
        pulls.append(time.perf_counter() - t0)
        if not leased:
            break
        for note in leased:
            ref = MessageRef(channel="C0BENCH", ts=f"{note.id}.0001", purpose=note.kind)
            t0 = time.perf_counter()
            if outbox.ack(note.id, "bench", delivered=True, refs=[ref]):
                delivered += 1
            acks.append(time.perf_counter() - t0)
    return pulls, acks, time.perf_counter() - started, delivered


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def run_once(base: sa.URL, tasks: int, batch: int) -> tuple[list[float], list[float], float]:
    name = f"woxqaq_outbox_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    store = TaskStore(base.set(database=name).render_as_string(hide_password=False))
    try:
        store.migrate()
        fill(store, tasks)
        outbox = Outbox(store, DatasourceRegistry(Config()))
        pulls, acks, total, delivered = drain(outbox, batch)
        if delivered != 2 * tasks:
            raise SystemExit(f"delivered {delivered} notifications of {2 * tasks}")
        return pulls, acks, total
    finally:
        store.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = sa.make_url(PG)
    runs = [run_once(base, args.tasks, args.batch) for _ in range(args.repeats)]
    pulls, acks, total = min(runs, key=lambda r: r[2])
    print(f"{2 * args.tasks} notifications of {args.tasks} tasks, batches of {args.batch}")
    print(f"best drain of {args.repeats}: {total:.2f} s")
    print(f"{'call':<6} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for label, values in (("pull", pulls), ("ack", acks)):
        print(
            f"{label:<6} {len(values):>6} {ms(values, 0.5):>8.2f} {ms(values, 0.99):>8.2f} "
            f"{1000 * max(values):>8.2f} {1000 * statistics.fmean(values):>8.2f}"
        )


if __name__ == "__main__":
    main()
