"""Test-data generation into PostgreSQL and MariaDB: rows a second and peak memory.

Each round runs in a child process of its own (so its peak RSS is its own): the generators
are checked against a scratch `users` table, the preview taken, then `--rows` rows are
generated in batches and written through the load path (COPY on PostgreSQL, batched
INSERTs on MariaDB) in one transaction, as an approved task's run does. Printed: the time to
prepare (pre-check and preview), to generate and write, rows a second overall and for the
generators alone, and the child's peak RSS.

    python bench/generate_bench.py [--rows 1000000] [--only postgres|mysql]

Targets: at least 100,000 rows/s into PostgreSQL, peak RSS under 200 MB. Loopback only;
the scratch databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.app.generation import prepare, rows_to_write  # noqa: E402
from service.domain.model import ImportMode  # noqa: E402
from service.load import LoadTarget, load_rows  # noqa: E402
from woxqaq.generator_rules import parse_rules  # noqa: E402

SERVERS = {
    "postgres": os.environ.get(
        "WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("WOXQAQ_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TABLE = """
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email varchar(120) NOT NULL,
    name varchar(80),
    age smallint,
    status varchar(12),
    balance decimal(12,2),
    created_at timestamp NULL,
    note varchar(200)
)
"""
RULES = """
id: sequence 1
email: faker email
name: faker name zh_CN
age: int 18 80
status: choice active,suspended,closed weights 90,8,2
balance: decimal 0 10000 2
created_at: timestamp 2024-01-01T00:00:00 2025-12-31T23:59:59
note: null 0.7
"""


def round_in_child(url: str, rows: int, out: Any) -> None:
    engine = sa.create_engine(make_url(url))
    schema = "public" if engine.dialect.name == "postgresql" else engine.url.database or ""
    t0 = time.perf_counter()
    prepared = prepare(
        engine, schema, "users", parse_rules(RULES.splitlines()), rows=rows, seed=42,
        today=date(2026, 1, 1),
    )  # fmt: skip
    assert not prepared.problems, prepared.problems
    t1 = time.perf_counter()
    result = load_rows(
        engine,
        LoadTarget(table="users", columns=prepared.columns),
        rows_to_write(prepared, rows, prepared.preview_rows()),
        mode=ImportMode.INSERT,
        statement_timeout_s=3600,
    )
    t2 = time.perf_counter()
    assert result.written == rows, result
    # The generators alone, same rows again, for the share of the time they take.
    again = prepare(
        engine, schema, "users", parse_rules(RULES.splitlines()), rows=rows, seed=42,
        today=date(2026, 1, 1),
    )  # fmt: skip
    t3 = time.perf_counter()
    for _ in rows_to_write(again, rows, again.preview_rows()):
        pass
    t4 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.send((t1 - t0, t2 - t1, t4 - t3, peak_kb / 1024))
    engine.dispose()


def scratch(base: str) -> tuple[URL, sa.Engine]:
    url = make_url(base)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"woxqaq_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return url.set(database=name), admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=sorted(SERVERS))
    args = parser.parse_args()
    print(f"{args.rows:,} generated rows, 8 columns (faker email + zh_CN name, int, choice, ")
    print("decimal, timestamp, text with 70 % NULLs), one transaction, INSERT mode\n")
    header = (
        f"{'database':<10} {'prepare s':>9} {'write s':>8} {'rows/s':>9} "
        f"{'gen only rows/s':>15} {'peak RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, base in SERVERS.items():
        if args.only and name != args.only:
            continue
        url, admin = scratch(base)
        try:
            with sa.create_engine(url).begin() as conn:
                conn.exec_driver_sql(TABLE)
            recv, send = mp.Pipe(duplex=False)
            child = mp.get_context("spawn").Process(
                target=round_in_child,
                args=(url.render_as_string(hide_password=False), args.rows, send),
            )
            child.start()
            prep_s, write_s, gen_s, rss_mb = recv.recv()
            child.join()
            print(
                f"{name:<10} {prep_s:>9.2f} {write_s:>8.1f} {args.rows / write_s:>9,.0f} "
                f"{args.rows / gen_s:>15,.0f} {rss_mb:>11.0f}"
            )
        finally:
            with admin.connect() as conn:
                drop = f"DROP DATABASE IF EXISTS {url.database}"
                if name == "postgres":
                    drop += " WITH (FORCE)"
                conn.exec_driver_sql(drop)
            admin.dispose()


if __name__ == "__main__":
    main()
