"""The import pre-check's unique-key check: time and peak RSS of a whole pre-check (read,
convert, check every key) of a file whose key is one column, and one whose key is two.

    python bench/import_keys_bench.py [--rows 1000000 10000000] [--repeat 3] [--in-memory]

Each pre-check runs in a fresh child process, so its peak RSS is its own; the best of
--repeat runs is shown. --in-memory adds the same pre-check with the keys' digests held in
a Python set instead of on disk (how the check worked before), for comparison.
The tables live in WOXQAQ_BENCH_PG_URL's database (created if missing, its tables dropped
at the end). Target: peak RSS under 200 MB at 10,000,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get(
    "WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_import_keys"
)
TABLES = {
    "one-column": (
        "bench_keys_one",
        "CREATE TABLE {t} (code varchar(20) PRIMARY KEY, qty int, note text)",
        "code,qty,note",
    ),
    "two-column": (
        "bench_keys_two",
        "CREATE TABLE {t} (region int, code varchar(20), qty int, note text, "
        "PRIMARY KEY (region, code))",
        "region,code,qty,note",
    ),
}


def write_csv(path: Path, key: str, rows: int) -> None:
    header = TABLES[key][2]
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        for i in range(rows):
            note = "" if i % 20 == 0 else f"note {i}"
            if key == "one-column":
                f.write(f"C{i:09},{i % 1000},{note}\n")
            else:
                f.write(f"{i % 97},C{i // 97:09},{i % 1000},{note}\n")


def make_tables() -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).scalar()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    server.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table, ddl, _ in TABLES.values():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(ddl.format(t=table))
    engine.dispose()


def drop_tables() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        for table, _, _ in TABLES.values():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()


# -- child ---------------------------------------------------------------------------------


class InMemorySeenKeys:
    """The former check: every digest in a Python set (about 70 bytes a row)."""

    def __init__(self, work_dir: Path) -> None:
        self.digests: set[int] = set()

    def __enter__(self) -> InMemorySeenKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.digests.clear()

    def repeated(self, digests: list[int]) -> list[bool]:
        flags = []
        for digest in digests:
            flags.append(digest in self.digests)
            self.digests.add(digest)
        return flags


def child(key: str, csv_path: Path, in_memory: bool) -> dict[str, Any]:
    import service.app.imports as imports
    from service.app.tasks import NewTask
    from service.config import parse_config
    from service.datasources import DatasourceRegistry
    from service.domain.model import ExportSpec, ImportSpec, Schedule, TaskKind
    from service.storage.factory import build_object_store

    if in_memory:
        imports.SeenKeys = InMemorySeenKeys  # type: ignore[misc,assignment]
    table = TABLES[key][0]
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "server": {"data_dir": tmp},
                "storage": {"local": {"http_listen": "127.0.0.1:0"}},
                "import": {"max_rows": 100_000_000},
                "datasources": {
                    "bench": {"url": PG_URL, "write_url": PG_URL, "writable_tables": ["*"]}
                },
            }
        )
        objects = build_object_store(config)
        object_key = "uploads/bench/keys.csv"
        objects.put_file(object_key, csv_path, filename="keys.csv", content_type="text/csv")
        registry = DatasourceRegistry(config)
        handler = imports.ImportHandler(config, None, registry, objects)  # type: ignore[arg-type]
        new = NewTask(
            "bench",
            TaskKind.DATA_IMPORT,
            "bench",
            ExportSpec(),
            Schedule(),
            ImportSpec(table=table, object_key=object_key),
        )
        started = time.perf_counter()
        checked = handler.precheck(new, registry.get("bench"))
        seconds = time.perf_counter() - started
        assert not checked.problems, checked.problems[:3]
        assert checked.preview is not None
        return {"seconds": seconds, "rows": checked.preview.total_rows}


def run_child(key: str, csv_path: Path, in_memory: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", key, "--csv", str(csv_path)]
    out = subprocess.run(
        command + (["--in-memory"] if in_memory else []),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        lines = out.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--in-memory", action="store_true")
    p.add_argument("--child")
    p.add_argument("--csv")
    args = p.parse_args()
    if args.child:
        result = child(args.child, Path(args.csv), args.in_memory)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    make_tables()
    print(f"{'key':<11} {'check':<9} {'rows':>11} {'best s':>8} {'rows/s':>9} {'peak RSS MB':>12}")
    try:
        for rows in args.rows:
            for key in TABLES:
                with tempfile.TemporaryDirectory() as tmp:
                    csv_path = Path(tmp) / "keys.csv"
                    write_csv(csv_path, key, rows)
                    for in_memory in (False, True) if args.in_memory else (False,):
                        runs = [run_child(key, csv_path, in_memory) for _ in range(args.repeat)]
                        ok = [r for r in runs if "error" not in r]
                        check = "in memory" if in_memory else "on disk"
                        if not ok:
                            print(f"{key:<11} {check:<9} {runs[0]['error'][:80]}")
                            continue
                        best = min(ok, key=lambda r: r["seconds"])
                        rss = max(r["rss_mb"] for r in ok)
                        print(
                            f"{key:<11} {check:<9} {best['rows']:>11,} {best['seconds']:>8.1f} "
                            f"{best['rows'] / best['seconds']:>9,.0f} {rss:>12.0f}",
                            flush=True,
                        )
    finally:
        drop_tables()


if __name__ == "__main__":
    main()
