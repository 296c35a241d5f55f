"""Export throughput and memory, next to the tools we measure against.

    python bench/export_bench.py --rows 1000000,5000000 [--methods csv,psql,...] [--order-by id]

For each row count it creates (once) `bench.orders_<N>` in the PostgreSQL database of
--url and `orders_<N>` in the MariaDB/MySQL database of --mysql-url: bigint, text with
commas/quotes/newlines/Chinese, a decimal(12,2), a timestamp with microseconds, a boolean,
JSON, email, about 5% NULLs. Then every method runs in a fresh child process, so its peak
RSS is its own:

    csv         our export, CSV (PostgreSQL COPY path)
    csv-rows    our export, CSV through Python rows (GBK forces that path)
    psql        psql \\copy (...) to file csv header  (peak RSS of psql itself)
    xlsx        our export, XLSX
    xlsx-bare   a bare xlsxwriter constant_memory loop over a psycopg named cursor
    my-csv      our export from MariaDB, CSV (rendered by the server)
    my-rows     our export from MariaDB, CSV through Python rows (GBK forces that path)
    mariadb     mariadb --batch --quick (tab-separated) to a file  (RSS of the client)
    my-bare     the bare driver loop: every row through a PyMySQL SSCursor, nothing written

Timing starts once the child has imported what a running service holds already.
Targets: csv <= 1.5x psql; my-csv <= 2x mariadb; xlsx <= 0.25x xlsx-bare; peak RSS < 200 MB
(xlsx < 100 MB) and within 20% between the smallest and the largest row count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = os.environ.get(
    "WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/woxqaq_bench"
)
DEFAULT_MYSQL_URL = os.environ.get(
    "WOXQAQ_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/woxqaq_bench?charset=utf8mb4"
)
METHODS = (
    "csv",
    "csv-rows",
    "psql",
    "xlsx",
    "xlsx-bare",
    "my-csv",
    "my-rows",
    "mariadb",
    "my-bare",
)
MYSQL_METHODS = ("my-csv", "my-rows", "mariadb", "my-bare")

TABLE_SQL = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE bench.{table} AS
SELECT g::bigint AS id,
       CASE WHEN g % 20 = 0 THEN NULL
            ELSE 'customer ' || g || ', "vip" 客户' ||
                 CASE WHEN g % 7 = 0 THEN E'\\nsecond line' ELSE '' END END AS customer,
       ((g % 100000) / 100.0)::numeric(12,2) AS amount,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS created_at,
       CASE WHEN g % 20 = 1 THEN NULL ELSE g % 2 = 0 END AS paid,
       jsonb_build_object('sku', 'S' || (g % 1000), 'qty', g % 5, 'tags',
                          jsonb_build_array('a', '标签')) AS meta,
       CASE WHEN g % 20 = 2 THEN NULL ELSE 'user' || g || '@example.com' END AS email,
       'note ' || md5(g::text) AS note,
       (g % 1000)::int AS region
FROM generate_series(1, {rows}) AS g;
ANALYZE bench.{table};
"""


MYSQL_TABLE_SQL = """
CREATE TABLE {table} (
    id BIGINT PRIMARY KEY, customer VARCHAR(200), amount DECIMAL(12,2),
    created_at DATETIME(6), paid BOOLEAN, meta JSON, email VARCHAR(200), note VARCHAR(100),
    region INT
) DEFAULT CHARSET utf8mb4;
SET SESSION max_recursive_iterations = 100000000;
INSERT INTO {table}
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows})
SELECT n,
       IF(n % 20 = 0, NULL, CONCAT('customer ', n, ', "vip" 客户',
                                   IF(n % 7 = 0, '\\nsecond line', ''))),
       (n % 100000) / 100.0,
       TIMESTAMP('2024-01-01') + INTERVAL n SECOND + INTERVAL (n % 1000) * 1000 MICROSECOND,
       IF(n % 20 = 1, NULL, n % 2 = 0),
       JSON_OBJECT('sku', CONCAT('S', n % 1000), 'qty', n % 5, 'tags', JSON_ARRAY('a', '标签')),
       IF(n % 20 = 2, NULL, CONCAT('user', n, '@example.com')),
       CONCAT('note ', MD5(n)),
       n % 1000
FROM g;
ANALYZE TABLE {table};
"""


def table_name(rows: int) -> str:
    return f"orders_{rows}"


def ensure_table(url: str, rows: int) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = %(d)s", {"d": u.database}
        ).first():
            conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
    admin.dispose()
    engine = sa.create_engine(u)
    with engine.begin() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = 'bench' AND table_name = %(t)s",
            {"t": table_name(rows)},
        ).first()
        if not exists:
            print(f"creating bench.{table_name(rows)} ({rows:,} rows)...", file=sys.stderr)
            # straight to psycopg: no parameters, so `%` is the modulo operator
            raw = conn.connection.driver_connection
            raw.execute(TABLE_SQL.format(table=table_name(rows), rows=rows).encode())
    with engine.connect() as conn:  # warm the cache so methods compare fairly
        conn.exec_driver_sql(f"SELECT count(*) FROM bench.{table_name(rows)}").scalar()
    engine.dispose()


def ensure_mysql_table(url: str, rows: int) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = sa.create_engine(u.set(database=""))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{u.database}`")
    admin.dispose()
    engine = sa.create_engine(u)
    with engine.begin() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name = %s",
            (table_name(rows),),
        ).first()
        if not exists:
            print(f"creating {table_name(rows)} in MariaDB ({rows:,} rows)...", file=sys.stderr)
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                for statement in MYSQL_TABLE_SQL.format(table=table_name(rows), rows=rows).split(
                    ";\n"
                ):
                    if statement.strip():
                        cur.execute(statement)
                        cur.fetchall()
    with engine.connect() as conn:  # warm the buffer pool so methods compare fairly
        conn.exec_driver_sql(f"SELECT count(*) FROM {table_name(rows)}").scalar()
    engine.dispose()


# --- children ---------------------------------------------------------------------------


def child(method: str, url: str, rows: int, out_dir: Path, order_by: str) -> dict[str, float]:
    query = f"SELECT * FROM bench.{table_name(rows)}"
    if method in MYSQL_METHODS:
        query = f"SELECT * FROM {table_name(rows)}"
    if order_by:
        query += f" ORDER BY {order_by}"
    if method not in ("psql", "mariadb"):  # a client forked after the imports would count them
        preload()
    started = time.perf_counter()
    if method in ("csv", "csv-rows", "xlsx", "my-csv", "my-rows"):
        out = run_ours(method, url, query, out_dir)
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elif method == "mariadb":
        out = run_mariadb_client(url, query, out_dir)
        maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    elif method == "my-bare":
        out = run_bare_pymysql(url, query, out_dir)
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elif method == "psql":
        out = run_psql(url, query, out_dir)
        maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    elif method == "xlsx-bare":
        out = run_bare_xlsx(url, query, out_dir)
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    return {"seconds": seconds, "rss_mb": maxrss_kb / 1024, "out_mb": size / 1e6}


def preload() -> None:
    """Import what a running service has loaded long before an export starts: up to a
    second of a loaded machine's time that no export pays (the clients' start-up, in C,
    is a few milliseconds and stays in their figures)."""
    import psycopg  # noqa: F401
    import pymysql  # noqa: F401
    import sqlalchemy  # noqa: F401
    import xlsxwriter  # noqa: F401

    import service.datasources
    import service.export.engine  # noqa: F401


def run_ours(method: str, url: str, query: str, out_dir: Path) -> Path:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from service.datasources import Datasource
    from service.domain.model import Encoding, ExportSpec, ExportType
    from service.export.engine import ExportOptions, export

    ds = Datasource("bench", make_url(url))
    engine = sa.create_engine(ds.url)
    spec = ExportSpec(
        statement=query,
        type=ExportType.EXCEL if method == "xlsx" else ExportType.CSV,
        encoding=Encoding.GBK if method in ("csv-rows", "my-rows") else Encoding.UTF8,
    )
    result = export(
        spec,
        ds,
        engine,
        work_dir=out_dir,
        basename=f"bench-{method}",
        options=ExportOptions(statement_timeout_s=3600),
    )
    return result.path


def run_mariadb_client(url: str, query: str, out_dir: Path) -> Path:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    out = out_dir / "mariadb.tsv"
    env = dict(os.environ)
    if u.password:
        env["MYSQL_PWD"] = str(u.password)
    with out.open("wb") as f:
        subprocess.run(
            ["mariadb", "--batch", "--quick", "-h", u.host or "127.0.0.1",
             "-P", str(u.port or 3306), "-u", u.username or "root",
             "--default-character-set=utf8mb4", "-D", u.database or "", "-e", query],
            check=True,
            env=env,
            stdout=f,
        )  # fmt: skip
    return out


def run_bare_pymysql(url: str, query: str, out_dir: Path) -> Path:
    """Every row through the driver's unbuffered cursor: the floor of any row path."""
    import pymysql
    import pymysql.cursors
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
        database=u.database, charset="utf8mb4",
    )  # fmt: skip
    rows = 0
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(query)
        while batch := cur.fetchmany(10_000):
            rows += len(batch)
    conn.close()
    out = out_dir / "bare.count"
    out.write_text(str(rows))
    return out


def run_psql(url: str, query: str, out_dir: Path) -> Path:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    out = out_dir / "psql.csv"
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    subprocess.run(
        [
            "psql", "-X", "-q", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", u.username or "postgres", "-d", u.database or "postgres",
            "-c", f"\\copy ({query}) to '{out}' csv header",
        ],
        check=True,
        env=env,
    )  # fmt: skip
    return out


def run_bare_xlsx(url: str, query: str, out_dir: Path) -> Path:
    """The least a correct loop must do: naive datetimes, JSON as text."""
    import json as _json
    from datetime import datetime

    import psycopg
    import xlsxwriter
    from sqlalchemy.engine import make_url

    u = make_url(url)
    out = out_dir / "bare.xlsx"
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "tmpdir": str(out_dir)})
    ws = wb.add_worksheet("data")
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, dbname=u.database
    ) as conn:
        cur = conn.cursor(name="bare")
        cur.execute(query)
        header = [c.name for c in cur.description or ()]
        ws.write_row(0, 0, header)
        r = 1
        sheets = 1
        while rows := cur.fetchmany(10_000):
            for row in rows:
                if r == 1_048_576:  # a sheet is full: go on in the next one
                    sheets += 1
                    ws = wb.add_worksheet(f"data ({sheets})")
                    ws.write_row(0, 0, header)
                    r = 1
                values = [
                    v.replace(tzinfo=None)
                    if isinstance(v, datetime)
                    else _json.dumps(v)
                    if isinstance(v, (dict, list))
                    else v
                    for v in row
                ]
                ws.write_row(r, 0, values)
                r += 1
    wb.close()
    return out


# --- parent -----------------------------------------------------------------------------


def measure(
    method: str, url: str, rows: int, out_dir: Path, order_by: str
) -> dict[str, float] | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, "--url", url, "--rows", str(rows),
         "--out", str(out_dir), "--order-by", order_by],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        print(f"{method} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", default="1000000,5000000", help="comma-separated row counts")
    p.add_argument("--url", default=DEFAULT_URL, help="SQLAlchemy URL of the bench database")
    p.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL, help="SQLAlchemy URL (MariaDB)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--repeat", type=int, default=2, help="runs per method; the best counts")
    p.add_argument("--skip-xlsx", action="store_true")
    p.add_argument("--skip-psql", action="store_true")
    p.add_argument("--skip-rows-path", action="store_true", help="leave out csv-rows")
    p.add_argument("--out", default="", help="scratch directory (default: a temp dir)")
    p.add_argument("--order-by", default="", help="the query's ORDER BY (e.g. id), if any")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        print(
            json.dumps(child(args.child, args.url, int(args.rows), Path(args.out), args.order_by))
        )
        return

    methods = [m for m in args.methods.split(",") if m]
    if args.skip_xlsx:
        methods = [m for m in methods if not m.startswith("xlsx")]
    if args.skip_psql:
        methods = [m for m in methods if m != "psql"]
    if args.skip_rows_path:
        methods = [m for m in methods if m != "csv-rows"]
    counts = [int(n) for n in args.rows.split(",") if n]
    results: dict[tuple[str, int], dict[str, float]] = {}
    rounds: dict[tuple[str, int], list[float]] = {}  # every run's seconds, round by round
    with tempfile.TemporaryDirectory(dir=args.out or None) as tmp:
        for n in counts:
            if any(m not in MYSQL_METHODS for m in methods):
                ensure_table(args.url, n)
            if any(m in MYSQL_METHODS for m in methods):
                ensure_mysql_table(args.mysql_url, n)
            # Rounds interleave the methods so that a busy moment does not favour one.
            for _ in range(args.repeat):
                for m in methods:
                    url = args.mysql_url if m in MYSQL_METHODS else args.url
                    r = measure(m, url, n, Path(tmp), args.order_by)
                    if r is None:
                        continue
                    rounds.setdefault((m, n), []).append(r["seconds"])
                    best = results.get((m, n))
                    if best is None or r["seconds"] < best["seconds"]:
                        results[(m, n)] = r
                    print(
                        f"{m:<10} {n:>10,} rows  {r['seconds']:8.2f} s  "
                        f"{n / r['seconds']:>10,.0f} rows/s  {r['rss_mb']:7.1f} MB RSS  "
                        f"{r['out_mb']:8.1f} MB out",
                        file=sys.stderr,
                        flush=True,
                    )
    print("\n| method | rows | seconds | rows/s | peak RSS MB | output MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for (m, n), r in results.items():
        print(
            f"| {m} | {n:,} | {r['seconds']:.2f} | {n / r['seconds']:,.0f} | "
            f"{r['rss_mb']:.0f} | {r['out_mb']:.0f} |"
        )
    print()
    for n in counts:
        checks = [("csv", "psql", 1.5), ("my-csv", "mariadb", 2.0), ("xlsx", "xlsx-bare", 0.25)]
        for ours, ref, target in checks:
            if (ours, n) in results and (ref, n) in results:
                ratio = results[(ours, n)]["seconds"] / results[(ref, n)]["seconds"]
                verdict = "ok" if ratio <= target else "MISSED"
                # Best against best can pit one lucky run against a typical one on a machine
                # whose speed drifts; runs of one round ran back to back.
                paired = sorted(
                    a / b for a, b in zip(rounds[(ours, n)], rounds[(ref, n)], strict=True)
                )
                median = statistics.median(paired)
                print(
                    f"{n:,} rows: {ours} / {ref} = {ratio:.2f}x best to best, "
                    f"{median:.2f}x median of {len(paired)} rounds "
                    f"({paired[0]:.2f}-{paired[-1]:.2f}) (target <= {target}x) {verdict}"
                )
    for m in methods:
        rss = [results[(m, n)]["rss_mb"] for n in counts if (m, n) in results]
        if len(rss) > 1 and m not in ("psql", "mariadb"):
            growth = max(rss) / min(rss) - 1
            limit = 100 if m == "xlsx" else 200
            ok = max(rss) < limit and growth <= 0.2
            print(
                f"{m}: peak RSS {min(rss):.0f}-{max(rss):.0f} MB, {growth:+.0%} across row counts "
                f"(target < {limit} MB, within 20%) {'ok' if ok else 'MISSED'}"
            )


if __name__ == "__main__":
    main()
