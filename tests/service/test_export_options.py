"""Export options over the real API: UTF-8 with a byte-order mark per task (gRPC and CLI),
`export.csv_escape_formulas`, and a datasource's timezone for its one-off exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from service_support import Running, shop_config

from service import cli
from service.config import ConfigError, parse_config
from woxqaq.v1 import task_service_pb2 as pb

Start = Callable[..., Running]
FORMULAS = "SELECT '=1+2' AS f, -5 AS n, '@x' AS a, 'plain' AS p"


def exported(svc: Running, task_id: str) -> bytes:
    """Approve the task, wait for its export, and download the file."""
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    detail = svc.wait_for_status(
        task_id, {pb.TASK_STATUS_EXECUTE_SUCCESS, pb.TASK_STATUS_EXECUTE_FAILED}
    )
    assert detail.task.status == pb.TASK_STATUS_EXECUTE_SUCCESS, detail.runs[0].error
    link = svc.as_user("dave").GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id))
    return requests.get(link.url, timeout=10).content


def test_a_task_asks_for_utf8_with_a_byte_order_mark(start_service: Start) -> None:
    svc = start_service()
    resp = svc.submit("dave", sql="SELECT '中文' AS name", encoding=pb.ENCODING_UTF8_BOM)
    assert svc.detail(resp.task_id).task.ded.encoding == pb.ENCODING_UTF8_BOM
    assert exported(svc, resp.task_id) == "\ufeffname\r\n中文\r\n".encode()


def test_the_cli_submits_utf8_with_a_byte_order_mark(
    start_service: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    svc = start_service()
    rc = cli.main(["--addr", svc.addr, "--user", "dave", "--json", "submit", "--dsn", "shop",
                   "--sql", "SELECT 1 AS one", "--encoding", "utf8-bom", "--reason", "r"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == cli.EXIT_OK, out
    task = json.loads(out)["task"]
    assert task["ded"]["encoding"] == "ENCODING_UTF8_BOM"
    task_id = str(task["id"])
    assert exported(svc, task_id).startswith(b"\xef\xbb\xbfone\r\n")


def test_formula_escaping_is_off_by_default(start_service: Start) -> None:
    svc = start_service()
    body = exported(svc, svc.submit("dave", sql=FORMULAS).task_id)
    assert body == b"f,n,a,p\r\n=1+2,-5,@x,plain\r\n"


def test_formula_escaping_prefixes_text_a_spreadsheet_would_run(start_service: Start) -> None:
    svc = start_service(export={"csv_escape_formulas": True})
    body = exported(svc, svc.submit("dave", sql=FORMULAS).task_id)
    assert body == b"f,n,a,p\r\n'=1+2,-5,'@x,plain\r\n"  # the number -5 stays a number


@pytest.mark.postgres
def test_a_datasources_timezone_is_its_one_off_exports_zone(
    start_service: Start, pg_url: Any, tmp_path: Path
) -> None:
    config = shop_config(tmp_path)
    config["datasources"]["pg"] = {
        "url": pg_url.render_as_string(hide_password=False),
        "approvers": ["alice"],
        "timezone": "America/New_York",
        "allow_privileged_reader": True,  # the test server's superuser
    }
    svc = start_service(config)
    sql = (
        "SELECT timestamptz '2024-06-30 16:30:00+00' AS summer, "
        "timestamptz '2024-01-15 12:00:00+00' AS winter, "
        "current_setting('TimeZone') AS zone"
    )
    body = exported(svc, svc.submit("dave", sql=sql, dsn="pg").task_id)
    assert body.decode().splitlines()[1] == (
        "2024-06-30T12:30:00-04:00,2024-01-15T07:00:00-05:00,America/New_York"
    )


def test_a_datasource_timezone_must_be_an_iana_name(tmp_path: Path) -> None:
    config = shop_config(tmp_path)
    config["datasources"]["shop"]["timezone"] = "Asia/Beijing"
    with pytest.raises(ConfigError, match=r"datasources\.shop\.timezone.*IANA"):
        parse_config(config)
