"""Data import through the real API on PostgreSQL and MariaDB, with a reader that may only
SELECT and a writer that may only SELECT, INSERT and UPDATE the target table: upload, submit,
pre-check with preview, approval, the write and its counts, and every refusal."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import openpyxl
import pytest
import requests
from import_support import Target, import_request, target_table, upload
from service_support import Running, shop_config
from sqlalchemy.engine import URL

from woxqaq.v1 import task_service_pb2 as pb

S = pb
DONE = {S.TASK_STATUS_EXECUTE_SUCCESS, S.TASK_STATUS_EXECUTE_FAILED}
CODES = 'code,discount,valid_until,note\r\nA2,25.50,2031-06-30,"comma, ""quote"""\r\nB1,5,,\r\n'


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    url: URL = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    with target_table(url) as t:
        yield t


@pytest.fixture
def pg_target(pg_url: URL) -> Iterator[Target]:
    with target_table(pg_url) as t:
        yield t


@pytest.fixture
def importing(tmp_path: Path, start_service: Callable[..., Running]) -> Callable[..., Running]:
    """Start the service with `shop` pointing at a target table's reader and writer."""

    def start(target: Target, **datasource: object) -> Running:
        return start_service(shop_config(tmp_path, shop=target.datasource(**datasource)))

    return start


def submit(svc: Running, target: Target, data: bytes, filename: str = "codes.csv", **dimd):
    key = upload(svc.channel, data, filename)
    resp = svc.as_user("alice").SubmitTask(import_request(target.table, key, **dimd))
    return resp, key


def approve(svc: Running, task_id: str) -> pb.GetTaskDetailResponse:
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=int(task_id), approver="bob"))
    return svc.wait_for_status(task_id, DONE)


def test_upsert_of_a_csv_updates_and_inserts_with_counts_preview_and_backup(
    target: Target, importing
) -> None:
    target.insert("('A2', 20.00, NULL, 'old'), ('Z9', 1.00, NULL, NULL)")
    svc = importing(target)
    resp, _ = submit(svc, target, CODES.encode(), mode=pb.IMPORT_MODE_UPSERT)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages

    before = svc.detail(resp.task_id)
    assert before.task.status == S.TASK_STATUS_APPROVING
    assert before.task.dimd.table == target.table and before.task.dimd.mode == pb.IMPORT_MODE_UPSERT
    preview = before.preview
    assert list(preview.columns) == ["code", "discount", "valid_until", "note"]
    assert preview.total_rows == 2 and len(preview.sha256) == 64
    assert [c.text for c in preview.rows[0].cells] == [
        "A2",
        "25.50",
        "2031-06-30",
        'comma, "quote"',
    ]
    assert preview.rows[1].cells[2].null and preview.rows[1].cells[3].null

    done = approve(svc, resp.task_id)
    run = done.runs[0]
    assert done.task.status == S.TASK_STATUS_EXECUTE_SUCCESS, run.error
    assert (run.rows, run.rows_skipped, run.rows_updated) == (1, 0, 1)
    assert run.backup_filename.endswith("_replaced.csv")
    assert target.rows() == [
        ("A2", Decimal("25.50"), date(2031, 6, 30), 'comma, "quote"'),
        ("B1", Decimal("5.00"), None, None),
        ("Z9", Decimal("1.00"), None, None),
    ]
    link = svc.as_user("alice").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=resp.task_id))
    backup = requests.get(link.url, timeout=10).text.splitlines()
    assert backup[0] == "code,discount,valid_until,note" and backup[1].startswith("A2,20.00")


def test_insert_of_an_existing_key_fails_the_run_and_leaves_the_table_unchanged(
    target: Target, importing
) -> None:
    target.insert("('B1', 9.00, NULL, NULL)")
    svc = importing(target)
    resp, _ = submit(svc, target, CODES.encode())
    done = approve(svc, resp.task_id)
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert "nothing was written" in done.runs[0].error
    assert "SKIP_EXISTING" in done.runs[0].error
    assert target.rows() == [("B1", Decimal("9.00"), None, None)]


def test_skip_existing_counts_the_rows_it_left_alone(target: Target, importing) -> None:
    target.insert("('B1', 9.00, NULL, NULL)")
    svc = importing(target)
    resp, _ = submit(svc, target, CODES.encode(), mode=pb.IMPORT_MODE_SKIP_EXISTING)
    with pytest.raises(grpc.RpcError) as err:  # never run by its submitter alone
        svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    run = approve(svc, resp.task_id).runs[0]
    assert (run.rows, run.rows_skipped, run.rows_updated) == (1, 1, 0)
    assert target.rows()[1] == ("B1", Decimal("9.00"), None, None)


def test_bad_values_fail_the_precheck_with_row_column_and_value(
    pg_target: Target, importing
) -> None:
    svc = importing(pg_target)
    bad = (
        "code,discount,valid_until\r\n"
        "OK1,1.5,2030-01-01\r\n"
        "TOO-LONG-CODE-X,1,\r\n"
        "C3,1.234,\r\n"
        "C4,,2030-02-30\r\n"
        "OK1,2,\r\n"
    )
    resp, _ = submit(svc, pg_target, bad.encode())
    assert not resp.ok
    detail = svc.detail(resp.task_id)
    assert detail.task.status == S.TASK_STATUS_PRE_CHECK_FAILED
    messages = "\n".join(detail.precheck_messages)
    assert (
        "row 3, column code: 'TOO-LONG-CODE-X' is 15 characters long; the column holds 12"
        in messages
    )
    assert "row 4, column discount: '1.234' has 3 decimal places; the column keeps 2" in messages
    assert "row 5, column discount" in messages and "NOT NULL" in messages
    assert "row 5, column valid_until: '2030-02-30' is not a date" in messages
    assert "row 6: key (code) = (OK1) appears earlier in the file" in messages
    assert pg_target.rows() == []


def test_problems_beyond_twenty_are_counted(pg_target: Target, importing) -> None:
    svc = importing(pg_target)
    data = "code,discount\r\n" + "".join(f"C{i},x\r\n" for i in range(45))
    resp, _ = submit(svc, pg_target, data.encode())
    messages = list(svc.detail(resp.task_id).precheck_messages)
    assert len(messages) == 21 and messages[-1] == "45 problems in all; the first 20 are listed"


def test_a_table_outside_writable_tables_and_a_datasource_without_write_url_are_refused(
    pg_target: Target, importing
) -> None:
    svc = importing(pg_target, writable_tables=["staging.*"])
    resp, _ = submit(svc, pg_target, CODES.encode())
    messages = svc.detail(resp.task_id).precheck_messages
    assert not resp.ok and "datasources.shop.writable_tables" in messages[0]

    svc = importing(pg_target, write_url="", write_password="")
    resp, _ = submit(svc, pg_target, CODES.encode())
    messages = svc.detail(resp.task_id).precheck_messages
    assert not resp.ok and "datasources.shop.write_url" in messages[0]
    assert pg_target.writer.password not in "".join(messages)


def test_the_object_replaced_after_approval_fails_the_run_and_writes_nothing(
    pg_target: Target, importing
) -> None:
    svc = importing(pg_target, approvers=["bob"])
    resp, key = submit(svc, pg_target, CODES.encode(), exector=pb.EXEC_COMMITTER)
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="bob"))
    with svc.service.objects.open_writer(key, filename="codes.csv", content_type="text/csv") as f:
        f.write(CODES.replace("5,", "95,").encode())
    svc.as_user("alice").Execute(pb.ExecuteRequest(task_id=int(resp.task_id), executor="alice"))
    done = svc.wait_for_status(resp.task_id, DONE)
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert "changed after it was checked" in done.runs[0].error
    assert pg_target.rows() == []


@pytest.mark.parametrize(
    "replacement",
    [
        CODES.replace("25.50", "lots"),  # a value the pre-check would refuse
        CODES.replace("code,discount", "kod,discount"),  # a header that maps no more
        CODES + "A2,1.00,,\r\n",  # a key the table holds by then
    ],
    ids=["bad value", "other header", "duplicate key"],
)
def test_an_object_replaced_after_approval_is_named_replaced_wherever_it_fails(
    target: Target, importing, replacement: str
) -> None:
    svc = importing(target, approvers=["bob"])
    resp, key = submit(svc, target, CODES.encode(), exector=pb.EXEC_COMMITTER)
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="bob"))
    with svc.service.objects.open_writer(key, filename="codes.csv", content_type="text/csv") as f:
        f.write(replacement.encode())
    svc.as_user("alice").Execute(pb.ExecuteRequest(task_id=int(resp.task_id), executor="alice"))
    done = svc.wait_for_status(resp.task_id, DONE)
    assert done.task.status == S.TASK_STATUS_EXECUTE_FAILED
    assert "changed after it was checked" in done.runs[0].error
    assert target.rows() == []


def test_a_gbk_file(target: Target, importing) -> None:
    svc = importing(target)
    data = "code,discount,note\r\n优惠一,1.00,满减活动\r\n".encode("gbk")
    resp, _ = submit(svc, target, data, encoding=pb.ENCODING_GBK)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    assert approve(svc, resp.task_id).runs[0].rows == 1
    assert target.rows() == [("优惠一", Decimal("1.00"), None, "满减活动")]

    wrong, _ = submit(svc, target, data)  # read as UTF-8
    messages = svc.detail(wrong.task_id).precheck_messages
    assert "not valid UTF-8" in messages[0] and "choose GBK" in messages[0]


def xlsx(rows: list[list[object]], sheet: str = "codes") -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_sheet_with_dates_and_a_formula_refused(target: Target, importing) -> None:
    svc = importing(target)
    data = xlsx(
        [["code", "discount", "valid_until"], ["X1", 12.5, datetime(2030, 5, 1)], ["X2", 3, None]]
    )
    resp, _ = submit(svc, target, data, "codes.xlsx", format=pb.EXPORT_TYPE_EXCEL, sheet="codes")
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    assert approve(svc, resp.task_id).runs[0].rows == 2
    assert target.rows() == [
        ("X1", Decimal("12.50"), date(2030, 5, 1), None),
        ("X2", Decimal("3.00"), None, None),
    ]

    formula = xlsx([["code", "discount"], ["F1", "=1+1"]])
    resp, _ = submit(svc, target, formula, "f.xlsx", format=pb.EXPORT_TYPE_EXCEL)
    messages = svc.detail(resp.task_id).precheck_messages
    assert "row 2, column B holds a formula" in messages[0]


def test_columns_given_for_a_file_without_header(pg_target: Target, importing) -> None:
    svc = importing(pg_target)
    data = b"7.5,N1\r\n"
    resp, _ = submit(svc, pg_target, data, no_header=True, columns=["discount", "code"])
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    approve(svc, resp.task_id)
    assert pg_target.rows() == [("N1", Decimal("7.50"), None, None)]


def test_a_file_of_three_hundred_columns(pg_url: URL, importing) -> None:
    cols = [f"c{i:03}" for i in range(299)]
    ddl = "CREATE TABLE {t} (id int PRIMARY KEY, " + ", ".join(f"{c} int" for c in cols) + ")"
    with target_table(pg_url, ddl) as t:
        svc = importing(t)
        lines = [",".join(["id", *cols])] + [
            ",".join(str(r * 1000 + i) for i in range(300)) for r in range(20)
        ]
        resp, _ = submit(svc, t, ("\r\n".join(lines) + "\r\n").encode())
        assert resp.ok, svc.detail(resp.task_id).precheck_messages
        assert approve(svc, resp.task_id).runs[0].rows == 20
        assert len(t.rows()) == 20 and len(t.rows()[0]) == 300


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.SubmitTaskRequest(kind=pb.TASK_KIND_DATA_IMPORT, dsn="shop"), "dimd is missing"),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_IMPORT,
                dsn="shop",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
            ),
            "dimd is missing",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_EXPORT,
                dsn="shop",
                ded=pb.DataExportDetail(ebs=pb.ExportBySQL(statement="SELECT 1")),
                dimd=pb.DataImportDetail(table="t"),
            ),
            "takes ded, not dimd",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_IMPORT,
                dsn="shop",
                dimd=pb.DataImportDetail(table="t", object_key="uploads/x/a.csv"),
                schedule=pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron="0 9 * * *"),
            ),
            "CRON schedule is for exports only",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_IMPORT,
                dsn="shop",
                dimd=pb.DataImportDetail(table="t", object_key="tasks/1/runs/1/x.csv"),
            ),
            "UploadService.PreSign",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_IMPORT,
                dsn="shop",
                dimd=pb.DataImportDetail(table="t", object_key="uploads/x/a.csv", no_header=True),
            ),
            "no_header needs dimd.columns",
        ),
        (
            pb.SubmitTaskRequest(
                kind=pb.TASK_KIND_DATA_IMPORT,
                dsn="shop",
                dimd=pb.DataImportDetail(table="t", object_key="uploads/x/a.csv", mode=9),
            ),
            "dimd.mode",
        ),
    ],
)
def test_malformed_import_requests_are_invalid_arguments(
    request_: pb.SubmitTaskRequest, message: str, start_service, tmp_path: Path
) -> None:
    svc = start_service(shop_config(tmp_path))
    with pytest.raises(grpc.RpcError) as err:
        svc.as_user("alice").SubmitTask(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_an_approver_stops_a_running_import_and_the_table_is_unchanged(
    pg_target: Target, importing
) -> None:
    pg_target.insert("('KEEP', 1.00, NULL, NULL)")
    svc = importing(pg_target)
    data = "code,discount\n" + "".join(f"K{i},{i % 999}.5\n" for i in range(300_000))
    resp, _ = submit(svc, pg_target, data.encode(), exector=pb.EXEC_COMMITTER)
    task_id = int(resp.task_id)
    svc.as_user("bob").Approve(pb.ApproveRequest(task_id=task_id, approver="bob"))
    svc.as_user("alice").Execute(pb.ExecuteRequest(task_id=task_id, executor="alice"))
    for progress in svc.as_user("alice").WatchTask(pb.WatchTaskRequest(task_id=resp.task_id)):
        if progress.rows > 0:
            break
    assert (
        svc.as_user("carol")
        .Cancel(pb.CancelRequest(task_id=task_id, operator="carol", comment="wrong file"))
        .ok
    )
    detail = svc.wait_for_status(resp.task_id, {S.TASK_STATUS_CANCELED})
    deadline = time.monotonic() + 20
    while detail.runs[0].status == S.TASK_STATUS_EXECUTING and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = svc.detail(resp.task_id)
    assert detail.runs[0].status == S.TASK_STATUS_CANCELED
    assert detail.runs[0].error == "canceled by carol"
    assert pg_target.rows() == [("KEEP", Decimal("1.00"), None, None)]


def test_values_in_every_form_the_precheck_accepts_are_written_as_it_read_them(
    pg_url: URL, importing
) -> None:
    ddl = (
        "CREATE TABLE {t} (id int PRIMARY KEY, qty smallint, price numeric(6,2), ok boolean, "
        "day date, at timestamp, at_tz timestamptz, note varchar(5) NOT NULL, doc jsonb)"
    )
    data = (
        "id,qty,price,ok,day,at,at_tz,note,doc\r\n"
        '1, 7 ,+1.50,yes,20300102,2030-01-02T10:00:00+08:00,2030-01-02 10:00,,"{""a"": 1}"\r\n'
        "2,-3,1.5e1,OFF,2030-01-02,2030-01-02 10:00,2030-01-02T10:00:00+08:00,x ,[]\r\n"
    )
    with target_table(pg_url, ddl) as t:
        svc = importing(t)
        resp, _ = submit(svc, t, data.encode())
        assert resp.ok, svc.detail(resp.task_id).precheck_messages
        assert approve(svc, resp.task_id).task.status == S.TASK_STATUS_EXECUTE_SUCCESS
        utc = UTC
        assert t.rows() == [
            (1, 7, Decimal("1.50"), True, date(2030, 1, 2), datetime(2030, 1, 2, 2, 0),
             datetime(2030, 1, 2, 10, 0, tzinfo=utc), "", {"a": 1}),
            (2, -3, Decimal("15.00"), False, date(2030, 1, 2), datetime(2030, 1, 2, 10, 0),
             datetime(2030, 1, 2, 2, 0, tzinfo=utc), "x ", []),
        ]  # fmt: skip
