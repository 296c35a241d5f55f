"""Pre-check latency of a SQL export on PostgreSQL: the rules, the catalog and EXPLAIN.

    python bench/precheck_bench.py [--url URL] [--runs 300]

Creates (once) a few tables in a scratch database of its own on the server of --url, then
times the pre-check of typical queries end to end as SubmitTask runs it, minus the task
store: the domain rules (sqlglot and PostgreSQL's own parser),
the catalog lookup of every called function and operator, and EXPLAIN in the read-only
transaction, each time on a pooled connection. Prints p50/p99/max per query and per part.

Target: p99 < 50 ms for a typical query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from service.datasources import Datasource  # noqa: E402
from service.dbcheck.live import check_live  # noqa: E402
from service.domain.model import ExportSpec, Schedule  # noqa: E402
from service.domain.precheck import check_sql  # noqa: E402

DEFAULT_URL = os.environ.get(
    "WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/woxqaq_bench"
)

# exec_driver_sql: a literal % is written %%
SETUP = """
CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text, region text);
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
                                   status text, created_at timestamptz, meta jsonb);
INSERT INTO customers SELECT g, 'customer ' || g, 'r' || (g %% 20)
  FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING;
INSERT INTO orders SELECT g, g %% 10000 + 1, (g %% 1000) / 10.0, CASE WHEN g %% 3 = 0 THEN 'paid'
  ELSE 'open' END, timestamptz '2024-01-01' + g * interval '1 minute', jsonb_build_object('k', g)
  FROM generate_series(1, 200000) g ON CONFLICT DO NOTHING;
ANALYZE customers; ANALYZE orders;
"""

QUERIES = {
    "typical": (
        "SELECT o.id, c.name, o.amount, to_char(o.created_at, 'YYYY-MM-DD') AS day\n"
        "FROM orders o JOIN customers c ON c.id = o.customer_id\n"
        "WHERE o.status = 'paid' AND o.created_at >= now() - interval '30 days'\n"
        "ORDER BY o.created_at DESC"
    ),
    "reporting": (
        "WITH monthly AS (\n"
        "  SELECT date_trunc('month', created_at) AS m, customer_id, sum(amount) AS total\n"
        "  FROM orders GROUP BY 1, 2)\n"
        "SELECT m, customer_id, total, rank() OVER (PARTITION BY m ORDER BY total DESC) AS r,\n"
        "       coalesce(meta_count.n, 0) AS n\n"
        "FROM monthly LEFT JOIN LATERAL (\n"
        "  SELECT count(*) AS n FROM orders o2\n"
        "  WHERE o2.customer_id = monthly.customer_id AND o2.meta ->> 'k' IS NOT NULL\n"
        ") meta_count ON true WHERE total > 10"
    ),
    "small": "SELECT id, name FROM customers WHERE region = 'r3'",
}


def _ensure_database(url: sa.engine.URL) -> None:
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).first()
        if not found:
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    admin.dispose()


def _time(fn: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"{name:<28} {statistics.median(ordered):>8.2f} {p99:>8.2f} {ordered[-1]:>8.2f}"
        f"  {'ok' if p99 < 50 else 'OVER 50 ms'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    url = sa.engine.make_url(args.url)
    _ensure_database(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    source = Datasource("bench", url)
    with engine.begin() as conn:
        for statement in SETUP.split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)

    print(f"pre-check latency on {url.render_as_string(hide_password=True)}, {args.runs} runs")
    print(f"{'query / part':<28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, sql in QUERIES.items():

        def rules(sql: str = sql) -> object:
            return check_sql(sql, "postgres")

        def live(sql: str = sql) -> object:
            result = check_live(engine, source, ExportSpec(statement=sql), schedule=Schedule())
            assert not result.problems, result.problems
            return result

        def whole(sql: str = sql) -> object:
            assert not rules(sql)
            return live(sql)

        whole()  # warm the pool and the caches once
        print(_row(f"{name}: rules", _time(rules, args.runs)))
        print(_row(f"{name}: catalog + EXPLAIN", _time(live, args.runs)))
        print(_row(f"{name}: whole pre-check", _time(whole, args.runs)))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
