"""The service's /metrics endpoint: off unless configured, loopback by default, gRPC calls
counted by method and code, and a Grafana dashboard that graphs only what exists."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import requests
from prometheus_client import CollectorRegistry
from service_support import Running

from bot.metrics import BotMetrics
from service.config import ConfigError, parse_config
from service.listen import parse_listen
from woxqaq.v1 import task_service_pb2 as pb

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
METRIC_NAME = re.compile(r"\bwoxqaq_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}

Start = Callable[..., Running]


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry exposes (labelled metrics included before their first
    observation, as their family describes them)."""
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def test_metrics_are_off_by_default(start_service: Start) -> None:
    svc = start_service()
    assert svc.config.metrics.listen == ""
    assert svc.service.metrics_port == 0


def test_a_port_alone_listens_on_loopback_only() -> None:
    assert parse_listen("9464") == ("127.0.0.1", 9464)
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)


@pytest.mark.parametrize("bad", ["metrics", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_bad_listen_address_stops_start_up_naming_the_key(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^config key metrics\.listen: .*(host:port|range)"):
        parse_config({"metrics": {"listen": bad}})


def test_grpc_calls_are_counted_by_method_and_code(start_service: Start) -> None:
    svc = start_service(server={"token": "s3cret"}, metrics={"listen": "127.0.0.1:0"})
    user = svc.as_user("dave")
    user.ListTaskDetail(pb.ListTaskRequest())
    with pytest.raises(grpc.RpcError) as missing:
        user.GetTaskDetail(pb.GetTaskDetailRequest(task_id="404"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    intruder = svc.as_user("dave")
    intruder.metadata = [("x-woxqaq-user", "dave"), ("authorization", "Bearer wrong")]
    with pytest.raises(grpc.RpcError) as refused:
        intruder.ListTaskDetail(pb.ListTaskRequest())
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    unknown = svc.channel.unary_unary("/woxqaq.v1.TaskService/NoSuchMethod")
    with pytest.raises(grpc.RpcError):
        unknown(b"", timeout=10)

    text = requests.get(f"http://127.0.0.1:{svc.service.metrics_port}/metrics", timeout=10).text
    listed = '{code="%s",method="/woxqaq.v1.TaskService/%s"} 1.0'
    assert "woxqaq_grpc_server_handled_total" + listed % ("OK", "ListTaskDetail") in text
    assert "woxqaq_grpc_server_handled_total" + listed % ("NOT_FOUND", "GetTaskDetail") in text
    assert (
        "woxqaq_grpc_server_handled_total" + listed % ("UNAUTHENTICATED", "ListTaskDetail") in text
    )
    assert "NoSuchMethod" not in text  # a caller's made-up name is not a new series
    assert "s3cret" not in text and "dave" not in text


def test_the_metrics_endpoint_stops_with_the_service(start_service: Start) -> None:
    svc = start_service(metrics={"listen": "127.0.0.1:0"})
    url = f"http://127.0.0.1:{svc.service.metrics_port}/metrics"
    assert requests.get(url, timeout=10).status_code == 200
    svc.service.stop(grace_s=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_the_grafana_dashboard_graphs_only_metrics_that_exist(start_service: Start) -> None:
    svc = start_service()  # its registry includes the gauges read from the task store
    exposed = sample_names(svc.service.metrics.registry) | sample_names(BotMetrics().registry)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for e in exprs for name in METRIC_NAME.findall(e)}
    assert used, "the dashboard has no queries"
    assert used <= exposed, f"the dashboard queries metrics nobody exports: {used - exposed}"
    # and every family an operator might need is on it
    families = {n.removesuffix("_total") for n in exposed if not n.endswith("_created")}
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
    assert {re.sub(r"_(bucket|sum|count)$", "", f) for f in families} <= shown


SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
    "SELECT count(*) AS n FROM c"
)


def test_runs_waiting_for_a_worker_and_running_are_gauged(start_service: Start) -> None:
    svc = start_service(export={"workers": 1}, metrics={"listen": "127.0.0.1:0"})
    url = f"http://127.0.0.1:{svc.service.metrics_port}/metrics"
    for _ in range(2):  # one worker: the second waits for the first
        task_id = svc.submit("dave", sql=SLOW_SQL).task_id
        svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(task_id), approver="alice"))
    wanted = (
        'woxqaq_runs_in_progress{state="running"} 1.0',
        'woxqaq_runs_in_progress{state="queued"} 1.0',
    )
    deadline = time.monotonic() + 20  # the first run may still be on its way to the worker
    while not all(w in (text := requests.get(url, timeout=10).text) for w in wanted):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    svc.service.exports._abandon.set()  # the long counts have been seen: stop them
