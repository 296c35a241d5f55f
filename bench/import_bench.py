"""Import throughput and memory, next to the databases' own bulk loaders.

    python bench/import_bench.py [--rows 1000000] [--xlsx-rows 100000] [--skip-mysql] [--repeat 3]
    python bench/import_bench.py --xlsx-only --xlsx-rows 1000000 --repeat 3

One CSV file of --rows rows (text with commas, quotes and Chinese, numeric(10,2), date,
integer, about 5% NULLs) is written once; every method then runs in a fresh child process,
so its peak RSS is its own, into an empty table with a primary key:

    pg-precheck   our pre-check: read, hash, map and convert every row (no writes)
    pg-import     our run (INSERT mode): read and hash once, parse, convert, COPY, one transaction
    psql          psql \\copy … FROM file CSV HEADER (the target: pg-import <= 1.5x)
    my-import     our run into MariaDB: read and hash once, parse, convert, stream through
                  LOAD DATA LOCAL, one transaction
    my-load-data  mysql LOAD DATA LOCAL INFILE (the target: my-import <= 2x)
    xlsx-openpyxl our XLSX reader (openpyxl read-only) over a --xlsx-rows sheet: rows/s
    xlsx-calamine python-calamine over the same sheet, when it is installed: rows/s

--xlsx-only runs the two XLSX methods alone (no CSV file, no database).

Peak RSS target: under 200 MB. With --repeat N each method runs N times, taking turns (so a
burst of load elsewhere hits every method alike); the table shows each one's fastest run and
its highest peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
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

PG_URL = os.environ.get("WOXQAQ_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("WOXQAQ_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
TABLE = "bench_import_promo"
DDL = (
    "CREATE TABLE {t} (code varchar(20) PRIMARY KEY, discount {num}(10,2) NOT NULL, "
    "valid_until date, note text, qty int)"
)
COLUMNS = ["code", "discount", "valid_until", "note", "qty"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            note = "" if i % 20 == 0 else f'"promo {i}, ""spring"" 春季"'
            day = "" if i % 20 == 1 else f"2030-{i % 12 + 1:02}-{i % 28 + 1:02}"
            f.write(f"C{i:08},{i % 100000 / 100:.2f},{day},{note},{i % 1000}\n")


def write_xlsx(path: Path, rows: int) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = book.add_worksheet("codes")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, COLUMNS)
    from datetime import date

    for i in range(rows):
        ws.write_string(i + 1, 0, f"C{i:08}")
        ws.write_number(i + 1, 1, i % 100000 / 100)
        ws.write_datetime(i + 1, 2, date(2030, i % 12 + 1, i % 28 + 1), date_format)
        ws.write_string(i + 1, 3, f"promo {i}, 春季")
        ws.write_number(i + 1, 4, i % 1000)
    book.close()


# -- children ------------------------------------------------------------------------------


def _reset_table(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    num = "numeric" if url.startswith("postgresql") else "decimal"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        conn.exec_driver_sql(DDL.format(t=TABLE, num=num))
    engine.dispose()


def _handler(url: str, work: Path, csv_path: Path) -> tuple[Any, Any, Any, str]:
    """An ImportHandler over a local store holding the file, and a recorded import task."""
    from service.app.imports import ImportHandler
    from service.config import parse_config
    from service.datasources import DatasourceRegistry
    from service.domain.model import ExportSpec, ImportSpec, Preview, Schedule, TaskKind, TaskStatus
    from service.storage.factory import build_object_store
    from service.store.repository import TaskStore

    config = parse_config(
        {
            "server": {"data_dir": str(work)},
            "storage": {"local": {"http_listen": "127.0.0.1:0"}},
            "datasources": {"bench": {"url": url, "write_url": url, "writable_tables": ["*"]}},
        }
    )
    objects = build_object_store(config)
    key = "uploads/bench/codes.csv"
    objects.put_file(key, csv_path, filename="codes.csv", content_type="text/csv")
    store = TaskStore(config.task_store_url)
    store.migrate()
    registry = DatasourceRegistry(config)
    spec = ImportSpec(table=TABLE, object_key=key)
    with store.write() as tx, csv_path.open("rb") as f:
        task_id = tx.add_task(
            name="bench",
            kind=TaskKind.DATA_IMPORT,
            datasource="bench",
            submitter="bench",
            spec=ExportSpec(),
            schedule=Schedule(),
            required_approvals=1,
            status=TaskStatus.EXECUTING,
            import_spec=spec,
        )
        tx.set_preview(task_id, Preview(sha256=hashlib.file_digest(f, "sha256").hexdigest()))
        task = tx.get_task(task_id)
    return ImportHandler(config, store, registry, objects), registry, task, key


def child(method: str, csv_path: Path, xlsx_path: Path) -> dict[str, Any]:
    from service.app.kinds import RunControl

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if method.startswith("xlsx"):
            return _read_xlsx(method, xlsx_path, work)
        url = PG_URL if method.startswith("pg") else MYSQL_URL
        _reset_table(url)
        handler, registry, task, _ = _handler(url, work, csv_path)
        started = time.perf_counter()
        if method.endswith("precheck"):
            from service.app.tasks import NewTask

            checked = handler.precheck(
                NewTask("b", task.kind, "bench", task.spec, task.schedule, task.import_spec),
                registry.get("bench"),
            )
            assert not checked.problems, checked.problems
            rows = checked.preview.total_rows
        else:
            outcome = handler.run(task, 1, RunControl(lambda: False, lambda n: None))
            rows = outcome.rows
        return {"seconds": time.perf_counter() - started, "rows": rows}


def _read_xlsx(method: str, path: Path, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    rows = 0
    if method == "xlsx-calamine":
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path))
        for _ in book.get_sheet_by_index(0).iter_rows():
            rows += 1
    else:
        from service.domain.model import ExportType
        from service.load.files import HashingReader, open_rows

        with path.open("rb") as raw:
            reader = HashingReader(raw, 1 << 40)
            with open_rows(
                reader, ExportType.EXCEL, work_dir=work, max_unpacked=1 << 40
            ) as file_rows:
                for _ in file_rows:
                    rows += 1
    return {"seconds": time.perf_counter() - started, "rows": rows - 1}


# -- parent --------------------------------------------------------------------------------


def run_child(method: str, csv_path: Path, xlsx_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            method,
            "--csv",
            str(csv_path),
            "--xlsx",
            str(xlsx_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_tool(method: str, csv_path: Path, rows: int) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    url = PG_URL if method == "psql" else MYSQL_URL
    _reset_table(url)
    u = make_url(url)
    if method == "psql":
        cmd = [
            "psql", "-h", u.host or "127.0.0.1", "-U", u.username or "postgres",
            "-d", u.database or "", "-v", "ON_ERROR_STOP=1",
            "-c", f"\\copy {TABLE} FROM '{csv_path}' CSV HEADER",
        ]  # fmt: skip
    else:
        cmd = [
            "mysql", "--local-infile=1", "-h", u.host or "127.0.0.1", "-u", u.username or "root",
            u.database or "", "-e",
            f"LOAD DATA LOCAL INFILE '{csv_path}' INTO TABLE {TABLE} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' "
            "IGNORE 1 LINES (code, discount, @day, @note, qty) "
            "SET valid_until = NULLIF(@day, ''), note = NULLIF(@note, '')",
        ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return {"seconds": time.perf_counter() - started, "rows": rows, "rss_mb": None}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with the highest peak RSS of all runs; an error if any run failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    best = dict(min(runs, key=lambda r: r["seconds"]))
    peaks = [r["rss_mb"] for r in runs if r.get("rss_mb")]
    best["rss_mb"] = max(peaks) if peaks else None
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--xlsx-rows", type=int, default=100_000)
    p.add_argument("--skip-mysql", action="store_true")
    p.add_argument("--xlsx-only", action="store_true", help="only the XLSX readers")
    p.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest is shown")
    p.add_argument("--child")
    p.add_argument("--csv")
    p.add_argument("--xlsx")
    args = p.parse_args()
    if args.child:
        result = child(args.child, Path(args.csv), Path(args.xlsx))
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, xlsx_path = Path(tmp) / "codes.csv", Path(tmp) / "codes.xlsx"
        write_xlsx(xlsx_path, args.xlsx_rows)
        xlsx_size = xlsx_path.stat().st_size
        methods: list[str] = []
        if args.xlsx_only:
            print(f"XLSX {args.xlsx_rows:,} rows, {xlsx_size / 1e6:.1f} MB\n")
        else:
            write_csv(csv_path, args.rows)
            size = csv_path.stat().st_size
            print(
                f"{args.rows:,} rows, CSV {size / 1e6:.1f} MB; "
                f"XLSX {args.xlsx_rows:,} rows, {xlsx_size / 1e6:.1f} MB\n"
            )
            methods += ["pg-precheck", "pg-import", "psql"]
            if not args.skip_mysql:
                methods += ["my-import", "my-load-data"]
        print(f"{'method':<14} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
        methods += ["xlsx-openpyxl", "xlsx-calamine"]
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for _ in range(max(1, args.repeat)):
            for method in methods:
                if method in ("psql", "my-load-data"):
                    runs[method].append(run_tool(method, csv_path, args.rows))
                else:
                    runs[method].append(run_child(method, csv_path, xlsx_path))
        results = {m: _best(r) for m, r in runs.items()}
        for method, r in results.items():
            if "error" in r:
                print(f"{method:<14} {r['error'][:80]}")
                continue
            rss = f"{r['rss_mb']:.0f}" if r.get("rss_mb") else "-"
            print(
                f"{method:<14} {r['rows']:>10,} {r['seconds']:>8.2f} "
                f"{r['rows'] / r['seconds']:>10,.0f} {rss:>12}"
            )
        for ours, theirs, target in (("pg-import", "psql", 1.5), ("my-import", "my-load-data", 2)):
            if ours in results and theirs in results and "error" not in results[ours]:
                ratio = results[ours]["seconds"] / results[theirs]["seconds"]
                print(f"\n{ours} / {theirs}: {ratio:.2f}x (target <= {target}x)", end="")
        print()
        if args.xlsx_only:
            return
        for url in (PG_URL, *(() if args.skip_mysql else (MYSQL_URL,))):
            import sqlalchemy as sa

            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
            engine.dispose()


if __name__ == "__main__":
    main()
