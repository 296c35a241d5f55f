"""What an operator's Prometheus sees: /metrics of the service and of the bot, scraped over
HTTP after real work — an export, an approval that waited, a Slack delivery that failed
and was retried, a scheduled firing — each counted; no user data in any label."""

from __future__ import annotations

import time

import requests
from bot_support import APPROVAL_CHANNEL, wait_for
from fake_clock import Clock
from prometheus_client.parser import text_string_to_metric_families
from slack_standin import SlackStandIn

from bot.metrics import BotMetrics
from woxqaq.v1 import task_service_pb2 as pb

SQL = "SELECT order_no, amount FROM orders WHERE paid = 1 ORDER BY id"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[str, Samples]:
    resp = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return resp.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_metrics_count_an_export_an_approval_wait_a_failed_delivery_and_a_firing(
    start_service, make_bot, slack: SlackStandIn
) -> None:
    clock = Clock()
    service = start_service(clock=clock, metrics=True)
    bot_metrics = BotMetrics()
    bot_port = bot_metrics.serve("127.0.0.1:0")
    try:
        # The first post of the approval request fails: the delivery is retried.
        slack.fail(
            "chat.postMessage", "internal_error", when=lambda p: p["channel"] == APPROVAL_CHANNEL
        )
        bot = make_bot(service, metrics=bot_metrics)
        assert bot.submit_export("dave", sql=SQL).status_code == 200
        wait_for(lambda: slack.in_channel(APPROVAL_CHANNEL), timeout=20, what="approval retried")

        # While it waits, the task is counted as waiting, for as long as it has waited.
        time.sleep(0.3)
        _, waiting = scrape(service.metrics_port)
        assert value(waiting, "woxqaq_tasks_awaiting_approval") == 1
        assert value(waiting, "woxqaq_tasks_awaiting_approval_oldest_seconds") >= 0.3

        bot.service.approve("alice", 1)  # executor auto: the export runs at once
        wait_for(
            lambda: bot.service.detail("dave", "1").task.status == pb.TASK_STATUS_EXECUTE_SUCCESS,
            what="export done",
        )
        rows = bot.service.detail("dave", "1").runs[0].rows
        assert rows > 0

        # A scheduled task, approved, fires once on the next minute.
        fields = {"schedule": True, "cron": "* * * * *", "timezone": "UTC", "channel": "CFIN"}
        assert bot.submit_export("dave", sql=SQL, **fields).status_code == 200
        sched = wait_for(lambda: bot.service.detail("dave", "2"), what="scheduled task")
        assert sched.task.status == pb.TASK_STATUS_APPROVING
        bot.service.approve("alice", 2)
        clock.to_next_minute()
        assert len(service.scheduler.tick()) == 1
        wait_for(
            lambda: (
                bot.service.detail("dave", "2").runs[0].status == pb.TASK_STATUS_EXECUTE_SUCCESS
            ),
            what="scheduled run done",
        )
        wait_for(  # both results delivered and acked
            lambda: (
                value(
                    scrape(bot_port)[1],
                    "woxqaq_bot_deliveries_total",
                    kind="run_finished",
                    outcome="delivered",
                )
                >= 2
            ),
            what="results delivered",
        )

        text, m = scrape(service.metrics_port)
        assert (
            value(
                m,
                "woxqaq_runs_total",
                kind="data_export",
                status="success",
                format="csv",
                datasource="shop",
            )
            == 2
        )
        assert value(m, "woxqaq_run_rows_total", datasource="shop") == 2 * rows
        assert value(m, "woxqaq_run_bytes_total", datasource="shop") > 0
        assert value(m, "woxqaq_run_duration_seconds_count", status="success") == 2
        assert value(m, "woxqaq_run_queue_wait_seconds_count", kind="data_export") == 2
        assert value(m, "woxqaq_approval_wait_seconds_count", decision="approved") == 2
        assert value(m, "woxqaq_approval_wait_seconds_sum", decision="approved") >= 0.3
        assert value(m, "woxqaq_tasks_awaiting_approval") == 0
        assert value(m, "woxqaq_outbox_deliveries_total", outcome="failed") == 1
        assert value(m, "woxqaq_outbox_deliveries_total", outcome="delivered") >= 3
        assert value(m, "woxqaq_schedule_firings_total", outcome="ran") == 1
        assert value(m, "woxqaq_schedule_firings_total", outcome="skipped") == 0
        assert value(m, "woxqaq_schedule_firings_total", outcome="missed") == 0
        submit = "/woxqaq.v1.TaskService/SubmitTask"
        assert value(m, "woxqaq_grpc_server_handled_total", method=submit, code="OK") == 2
        assert value(m, "woxqaq_grpc_server_handling_seconds_count", method=submit) == 2
        ack = "/woxqaq.v1.NotificationService/Ack"
        assert value(m, "woxqaq_grpc_server_handled_total", method=ack, code="OK") >= 4

        _, b = scrape(bot_port)
        assert (
            value(b, "woxqaq_bot_deliveries_total", kind="approval_requested", outcome="retry") == 1
        )
        assert (
            value(b, "woxqaq_bot_deliveries_total", kind="approval_requested", outcome="delivered")
            == 2  # both tasks' requests
        )
        assert (
            value(b, "woxqaq_bot_deliveries_total", kind="run_finished", outcome="delivered") >= 2
        )
        assert value(b, "woxqaq_bot_slack_requests_total", type="slash_command", status="200") == 2
        assert (
            value(b, "woxqaq_bot_slack_requests_total", type="view_submission", status="200") == 2
        )

        # Labels carry names the operator configured, never who asked or what.
        for secret_ish in ("dave", "alice", "order_no", "daily", "CFIN"):
            assert secret_ish not in text
    finally:
        bot_metrics.close()
