"""`woxqaq import` uploads, submits and reports; `woxqaq show` gives approvers the preview;
approval runs it and `show` reports the counts. Real service, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from import_support import Target, target_table
from service_support import Running, shop_config
from sqlalchemy.engine import URL

from service import cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def target(pg_url: URL) -> Iterator[Target]:
    with target_table(pg_url) as t:
        yield t


def run(svc: Running, capsys: pytest.CaptureFixture[str], user: str, *args: str) -> tuple[int, str]:
    rc = cli.main(["--addr", svc.addr, "--user", user, *args])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def test_import_uploads_submits_shows_the_preview_and_reports_counts(
    target: Target,
    tmp_path: Path,
    start_service: Callable[..., Running],
    capsys: pytest.CaptureFixture[str],
) -> None:
    target.insert("('A1', 1.00, NULL, 'old')")
    svc = start_service(shop_config(tmp_path, shop=target.datasource()))
    codes = tmp_path / "codes.csv"
    codes.write_text("code,discount\nA1,2.50\nB2,3\n", encoding="utf-8")

    rc, out = run(
        svc, capsys, "zoe", "import", "--dsn", "shop", "--table", target.table,
        "--file", str(codes), "--mode", "upsert", "--reason", "May codes",
    )  # fmt: skip
    assert rc == cli.EXIT_OK, out
    task_id = out.split()[1]
    assert "waiting for approval" in out

    rc, shown = run(svc, capsys, "bob", "show", task_id)
    assert f"into {target.table}, mode UPSERT, CSV file codes.csv" in shown
    assert "2 rows, SHA-256 " in shown and "columns     code, discount" in shown
    assert "A1    2.50" in shown and "B2    3" in shown
    assert "code → code, discount → discount" in shown

    rc, out = run(svc, capsys, "bob", "approve", task_id)
    assert rc == cli.EXIT_OK, out
    svc.wait_for_status(task_id, {9, 10})
    rc, shown = run(svc, capsys, "zoe", "show", task_id)
    assert "1 rows written, 0 skipped, 1 updated; replaced rows saved in" in shown
    assert target.rows() == [
        ("A1", Decimal("2.50"), None, "old"),
        ("B2", Decimal("3.00"), None, None),
    ]


def test_import_of_a_bad_file_exits_3_with_the_problems(
    target: Target,
    tmp_path: Path,
    start_service: Callable[..., Running],
    capsys: pytest.CaptureFixture[str],
) -> None:
    svc = start_service(shop_config(tmp_path, shop=target.datasource()))
    codes = tmp_path / "codes.csv"
    codes.write_text("code,discount\nA1,lots\n", encoding="utf-8")
    rc, out = run(
        svc, capsys, "zoe", "import", "--dsn", "shop", "--table", target.table, "--file", str(codes)
    )
    assert rc == cli.EXIT_FAILED
    assert "row 2, column discount: 'lots' is not a number" in out
    rc, out = run(
        svc, capsys, "zoe", "import", "--dsn", "shop", "--table", "t", "--file", "missing.csv"
    )
    assert rc == cli.EXIT_USAGE and "no such file" in out
