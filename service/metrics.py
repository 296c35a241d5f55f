"""Prometheus metrics of the service: what runs, waits, is delivered and fires.

One `Metrics` per service process, on its own registry (tests start several services in
one process, and nothing here is global). Labels carry only names an operator configured
or the code fixed (task kind, status, format, datasource name, method, outcome), never a
user, a query or a task id: they would make unbounded series and leak user data.

Counts that live in the task store (tasks waiting for approval, the outbox's backlog) are
read from it when scraped, so every replica reports the same truth and a restart loses
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from threading import Thread
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.domain.model import Backlog
from service.listen import parse_listen

log = logging.getLogger(__name__)

# Exports take from a fraction of a second to an hour.
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900)
# People approve within minutes to days.
APPROVAL_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)
RPC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class MetricsServer:
    """The `/metrics` HTTP endpoint of one registry, on its own thread."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        host, port = parse_listen(listen)
        server: WSGIServer
        thread: Thread
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server, self._thread = server, thread
        self.port: int = server.server_port
        log.info("metrics served on http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class BacklogSource(Protocol):
    def backlog(self, now: datetime) -> Backlog: ...


class _BacklogCollector(Collector):
    """Gauges read from the task store at each scrape."""

    def __init__(self, source: BacklogSource) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time: no query at registration

    def collect(self) -> Iterator[Metric]:
        try:
            b = self._source.backlog(datetime.now(UTC))
        except Exception:  # the store is down: the scrape still answers with the rest
            log.warning("metrics: the task store could not be read", exc_info=True)
            return
        yield GaugeMetricFamily(
            "woxqaq_tasks_awaiting_approval",
            "Tasks waiting for approvers' votes.",
            value=b.awaiting_approval,
        )
        yield GaugeMetricFamily(
            "woxqaq_tasks_awaiting_approval_oldest_seconds",
            "How long the task waiting longest for approval has waited (0 when none waits).",
            value=b.oldest_approval_wait_s,
        )
        yield GaugeMetricFamily(
            "woxqaq_outbox_pending",
            "Notifications not yet delivered to a chat front end.",
            value=b.outbox_pending,
        )
        yield GaugeMetricFamily(
            "woxqaq_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered notification (0 when none is pending).",
            value=b.outbox_oldest_pending_s,
        )


class Served:
    """A registry of its own, served on /metrics once `serve` is called."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._server: MetricsServer | None = None

    def serve(self, listen: str) -> int:
        """Serve /metrics on `listen`; the port bound (0 in `listen` picks a free one)."""
        self._server = MetricsServer(self.registry, listen)
        return self._server.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class Metrics(Served):
    """The service's metrics. Always counted (it is cheap); served only when configured."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        run_labels = ("kind", "format", "datasource")
        self.runs = Counter(
            "woxqaq_runs",
            "Runs finished, by task kind, outcome, file format and datasource.",
            ("kind", "status", "format", "datasource"),
            registry=r,
        )
        self.run_rows = Counter(
            "woxqaq_run_rows", "Rows written by successful runs.", run_labels, registry=r
        )
        self.run_bytes = Counter(
            "woxqaq_run_bytes", "Bytes of files written by successful runs.", run_labels, registry=r
        )
        self.run_duration = Histogram(
            "woxqaq_run_duration_seconds",
            "Time from a run's start on a worker to its recorded outcome.",
            ("kind", "status", "format"),
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "woxqaq_run_queue_wait_seconds",
            "Time a run waited for a free export worker.",
            ("kind",),
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.runs_in_progress = Gauge(
            "woxqaq_runs_in_progress",
            "Runs of this process waiting for a free worker (queued) or exporting (running).",
            ("state",),
            registry=r,
        )
        self.approval_wait = Histogram(
            "woxqaq_approval_wait_seconds",
            "Time from a task's approval request to its decision, by decision.",
            ("decision",),
            buckets=APPROVAL_BUCKETS,
            registry=r,
        )
        self.outbox_acks = Counter(
            "woxqaq_outbox_deliveries",
            "Delivery attempts acknowledged by chat front ends: delivered, failed "
            "(retried later) or given_up (after the last attempt).",
            ("outcome",),
            registry=r,
        )
        self.firings = Counter(
            "woxqaq_schedule_firings",
            "Scheduled firings by outcome: ran, skipped (the previous run still ran) or "
            "missed (no service ran within the grace time).",
            ("outcome",),
            registry=r,
        )
        self.rpcs = Counter(
            "woxqaq_grpc_server_handled",
            "gRPC calls completed, by full method name and status code.",
            ("method", "code"),
            registry=r,
        )
        self.rpc_latency = Histogram(
            "woxqaq_grpc_server_handling_seconds",
            "Time to handle a gRPC call (a streaming call: until its last message).",
            ("method",),
            buckets=RPC_BUCKETS,
            registry=r,
        )
        for outcome in ("ran", "skipped", "missed"):  # present at 0 before the first firing
            self.firings.labels(outcome)
        for outcome in ("delivered", "failed", "given_up"):
            self.outbox_acks.labels(outcome)

    def watch_backlog(self, source: BacklogSource) -> None:
        self.registry.register(_BacklogCollector(source))
