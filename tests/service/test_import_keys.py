"""The import pre-check's unique-key check through the real API, on PostgreSQL and MariaDB:
a key repeated anywhere in a file (also past the first batch of keys, which is checked on
disk), many repeats, composite keys and NULLs in a key; the problems in file order, the
first 20 listed and all counted, and no file left in the work directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from import_support import Target, import_request, target_table, upload
from service_support import Running, shop_config
from sqlalchemy.engine import URL

from service.app.imports import KEY_BATCH_ROWS
from woxqaq.v1 import task_service_pb2 as pb

REGION_CODE_DDL = {  # the key is the primary key of two columns
    "postgresql": (
        "CREATE TABLE {t} (region varchar(8), code varchar(12), discount numeric(5,2) NOT NULL, "
        "PRIMARY KEY (region, code))"
    ),
    "mysql": (
        "CREATE TABLE {t} (region varchar(8), code varchar(12), discount decimal(5,2) NOT NULL, "
        "PRIMARY KEY (region, code))"
    ),
}
NULLABLE_KEY_DDL = {  # the key is a unique key whose columns may be NULL
    "postgresql": (
        "CREATE TABLE {t} (id serial PRIMARY KEY, region varchar(8), code varchar(12), "
        "UNIQUE (region, code))"
    ),
    "mysql": (
        "CREATE TABLE {t} (id int AUTO_INCREMENT PRIMARY KEY, region varchar(8), "
        "code varchar(12), UNIQUE (region, code))"
    ),
}


@pytest.fixture
def checking(tmp_path: Path, start_service: Callable[..., Running]) -> Callable[..., Running]:
    def start(target: Target) -> Running:
        return start_service(shop_config(tmp_path, shop=target.datasource()))

    return start


@pytest.fixture
def promo(writable_db_url: URL) -> Iterator[Target]:
    with target_table(writable_db_url) as t:
        yield t


def precheck_messages(svc: Running, target: Target, data: str) -> list[str]:
    """Submit `data` for import into `target`; the pre-check's messages, once it failed."""
    key = upload(svc.channel, data.encode())
    resp = svc.as_user("alice").SubmitTask(import_request(target.table, key))
    detail = svc.detail(resp.task_id)
    assert not resp.ok and detail.task.status == pb.TASK_STATUS_PRE_CHECK_FAILED
    return list(detail.precheck_messages)


def key_files(svc: Running) -> list[Path]:
    work_dir = svc.config.work_dir
    return sorted(work_dir.glob("import-keys-*")) if work_dir.exists() else []


def test_keys_repeated_after_the_first_batch_are_found_with_their_rows(
    promo: Target, checking
) -> None:
    rows = KEY_BATCH_ROWS + 50_000
    codes = [f"K{i}" for i in range(rows)]
    codes[7] = "K3"  # within the first batch
    codes[-1] = "K5"  # its first row is a batch before
    codes[KEY_BATCH_ROWS + 10] = f"K{KEY_BATCH_ROWS + 9}"  # the row before it, a later batch
    data = "code,discount\n" + "".join(f"{c},1.50\n" for c in codes)
    svc = checking(promo)

    messages = precheck_messages(svc, promo, data)

    # Data row i is file row i + 2: the header is row 1.
    assert messages == [
        "row 9: key (code) = (K3) appears earlier in the file; each key once",
        f"row {KEY_BATCH_ROWS + 12}: key (code) = (K{KEY_BATCH_ROWS + 9}) appears earlier in "
        "the file; each key once",
        f"row {rows + 1}: key (code) = (K5) appears earlier in the file; each key once",
    ]
    assert promo.rows() == []
    assert key_files(svc) == []


def test_many_repeated_keys_list_the_first_twenty_and_count_them_all(
    promo: Target, checking
) -> None:
    data = "code,discount\n" + "".join(f"K{i % 1000},2\n" for i in range(30_000))
    svc = checking(promo)

    messages = precheck_messages(svc, promo, data)

    assert messages[:20] == [
        f"row {i + 2}: key (code) = (K{i % 1000}) appears earlier in the file; each key once"
        for i in range(1000, 1020)
    ]
    assert messages[20:] == ["29,000 problems in all; the first 20 are listed"]


def test_repeated_keys_and_bad_values_are_listed_in_file_order(promo: Target, checking) -> None:
    data = "code,discount\nA1,1\nA2,x\nA1,2\nA3,1.234\nA2,3\n"
    svc = checking(promo)

    messages = precheck_messages(svc, promo, data)

    assert [m.split(":")[0] for m in messages] == [
        "row 3, column discount",
        "row 4",
        "row 5, column discount",
    ]  # A2 of row 3 was refused for its value: row 6 holds its first good A2
    assert messages[1] == "row 4: key (code) = (A1) appears earlier in the file; each key once"


def test_a_composite_key_repeats_only_when_every_column_does(
    writable_db_url: URL, checking
) -> None:
    with target_table(
        writable_db_url, REGION_CODE_DDL[writable_db_url.get_backend_name()]
    ) as target:
        svc = checking(target)
        data = "region,code,discount\nEU,A1,1\nUS,A1,1\nEU,A2,1\nEU,A1,2\nUS,A2,1\nUS,A1,3\n"

        messages = precheck_messages(svc, target, data)

        assert messages == [
            "row 5: key (region, code) = (EU, A1) appears earlier in the file; each key once",
            "row 7: key (region, code) = (US, A1) appears earlier in the file; each key once",
        ]
        assert target.rows() == []


def test_a_null_in_a_key_is_the_same_key_as_another_null_there(
    writable_db_url: URL, checking
) -> None:
    """Stricter than the database, which takes (NULL, 'A1') twice: the file says the same key
    twice, which is most likely a mistake in the file."""
    with target_table(
        writable_db_url, NULLABLE_KEY_DDL[writable_db_url.get_backend_name()]
    ) as target:
        svc = checking(target)
        data = "region,code\n,A1\nEU,A1\n,A1\n,\n,\nEU,\n"

        messages = precheck_messages(svc, target, data)

        assert messages == [
            "row 4: key (region, code) = (None, A1) appears earlier in the file; each key once",
            "row 6: key (region, code) = (None, None) appears earlier in the file; each key once",
        ]


def test_a_file_unreadable_after_a_repeated_key_reports_both_and_leaves_no_file(
    promo: Target, checking
) -> None:
    note = "n" * 200  # the bad byte is past the first megabyte the reader decodes at once
    lines = [f"K{i},1,{note}\n" for i in range(10_000)]
    lines[500] = "K1,1,\n"
    data = "code,discount,note\n" + "".join(lines) + "K\xe9,1,\n"
    svc = checking(promo)
    key = upload(svc.channel, data.encode("latin-1"))
    resp = svc.as_user("alice").SubmitTask(import_request(promo.table, key))

    messages = list(svc.detail(resp.task_id).precheck_messages)

    assert messages[0] == "row 502: key (code) = (K1) appears earlier in the file; each key once"
    assert messages[1].startswith("the file is not valid UTF-8 (after row ")
    assert len(messages) == 2
    assert key_files(svc) == []
