"""Scheduled exports over the real API: a run per firing, cancel, restart, missed firings.

The scheduler's thread is off here and a controllable clock drives `Scheduler.tick`, which
asks APScheduler's real CronTrigger what is due; everything else (the store, the export
engine, the worker pool) is the real thing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from fake_clock import Clock
from service_support import Running, runs, settled, shop_config

from woxqaq.v1 import notification_service_pb2 as npb
from woxqaq.v1 import notification_service_pb2_grpc as npb_grpc
from woxqaq.v1 import task_service_pb2 as pb

EVERY_MINUTE = pb.Schedule(
    trigger=pb.TRIGGER_KIND_CRON, cron="* * * * *", timezone="Asia/Shanghai", channel="C_FIN"
)
SQL = "SELECT order_no, amount FROM orders WHERE paid = 1 ORDER BY id"


def manual(**scheduler: Any) -> dict[str, Any]:
    return {"scheduler": {"enabled": False, **scheduler}}


def approved_schedule(svc: Running, schedule: pb.Schedule = EVERY_MINUTE, sql: str = SQL) -> str:
    resp = svc.submit("dave", sql=sql, schedule=schedule)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    return resp.task_id


def announced_runs(svc: Running, task_id: str) -> set[str]:
    """The runs of the task the bot is told have finished: the outbox drained as the bot
    drains it (a task's next notification comes once the previous one is acked)."""
    outbox = npb_grpc.NotificationServiceStub(svc.channel)
    finished: set[str] = set()
    while pulled := outbox.Pull(npb.PullRequest(max=100, consumer="test")).notifications:
        for n in pulled:
            if n.task_id == task_id and n.kind == "run_finished":
                finished.add(n.run_id)
            outbox.Ack(npb.AckRequest(id=n.id, consumer="test", delivered=True))
    return finished


Start = Callable[..., Running]


def firings_counted(svc: Running) -> dict[str, float]:
    """woxqaq_schedule_firings_total by outcome, as the service's metrics hold it."""
    registry = svc.service.metrics.registry
    return {
        outcome: registry.get_sample_value("woxqaq_schedule_firings_total", {"outcome": outcome})
        or 0
        for outcome in ("ran", "skipped", "missed")
    }


def test_precheck_shows_the_next_three_firings(start_service: Start, store_url: str) -> None:
    svc = start_service(store_url=store_url, **manual())
    schedule = pb.Schedule(
        trigger=pb.TRIGGER_KIND_CRON, cron="0 9 * * MON-FRI", timezone="Asia/Shanghai", channel="C"
    )
    resp = svc.submit("dave", sql=SQL, schedule=schedule)
    assert resp.ok
    events = {e.action: e.comment for e in svc.detail(resp.task_id).events}
    firings = events["schedule"].removeprefix("next runs: ").split(", ")
    assert len(firings) == 3
    for firing in firings:
        moment = datetime.strptime(firing, "%Y-%m-%d %H:%M CST")
        assert moment.strftime("%H:%M") == "09:00" and moment.weekday() < 5


@pytest.mark.parametrize(
    ("cron", "tz", "channel", "words"),
    [
        ("0 9 * *", "UTC", "C", "has 4 fields"),
        ("0 25 * * *", "UTC", "C", "is not valid"),
        ("0 9 * * *", "Asia/Beijing", "C", "not an IANA timezone"),
    ],
)
def test_a_bad_schedule_fails_the_precheck(
    start_service: Start, cron: str, tz: str, channel: str, words: str
) -> None:
    svc = start_service(**manual())
    schedule = pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron=cron, timezone=tz, channel=channel)
    resp = svc.submit("dave", sql=SQL, schedule=schedule)
    assert not resp.ok
    messages = svc.detail(resp.task_id).precheck_messages
    assert any(words in m for m in messages), messages


def test_each_firing_is_a_run_and_the_task_stays_approved(
    start_service: Start, store_url: str
) -> None:
    clock = Clock()
    svc = start_service(store_url=store_url, clock=clock, **manual())
    task_id = approved_schedule(svc)
    scheduler = svc.service.scheduler

    assert scheduler.tick() == []  # nothing due yet
    clock.to_next_minute()
    first = scheduler.tick()
    assert len(first) == 1
    assert scheduler.tick() == []  # the same firing never runs twice
    settled(svc, task_id, 1)
    clock.to_next_minute()
    assert len(scheduler.tick()) == 1

    done = settled(svc, task_id, 2)
    assert [r.status for r in done] == [pb.TASK_STATUS_EXECUTE_SUCCESS] * 2
    assert all(r.rows == 6 and r.executor == "scheduler" for r in done)
    detail = svc.detail(task_id)
    assert detail.task.status == pb.TASK_STATUS_APPROVED
    assert [e.action for e in detail.events].count("scheduled_run") == 2
    # each run has its own file behind a link
    links = {
        svc.as_user("dave")
        .GetDownloadUrl(pb.GetDownloadUrlRequest(task_id=task_id, run_id=r.id))
        .url
        for r in done
    }
    assert len(links) == 2


def test_a_scheduled_task_is_not_executed_by_hand(start_service: Start) -> None:
    svc = start_service(**manual())
    task_id = approved_schedule(svc)
    with pytest.raises(Exception) as info:
        svc.as_user("dave").Execute(pb.ExecuteRequest(task_id=int(task_id), executor="dave"))
    assert "runs on its schedule" in info.value.details()  # type: ignore[attr-defined]


def test_cancel_stops_the_schedule_at_once(start_service: Start, store_url: str) -> None:
    clock = Clock()
    svc = start_service(store_url=store_url, clock=clock, **manual())
    task_id = approved_schedule(svc)
    clock.to_next_minute()
    assert len(svc.service.scheduler.tick()) == 1
    settled(svc, task_id, 1)

    svc.as_user("dave").Cancel(pb.CancelRequest(task_id=int(task_id), operator="dave"))
    for _ in range(3):
        clock.to_next_minute()
        assert svc.service.scheduler.tick() == []
    assert len(runs(svc, task_id)) == 1
    assert svc.detail(task_id).task.status == pb.TASK_STATUS_CANCELED


def test_a_restart_keeps_the_schedule(start_service: Start, store_url: str) -> None:
    clock = Clock()
    first = start_service(store_url=store_url, clock=clock, **manual())
    task_id = approved_schedule(first)
    clock.to_next_minute()
    assert len(first.service.scheduler.tick()) == 1
    settled(first, task_id, 1)
    first.service.stop(grace_s=5)

    second = start_service(store_url=store_url, clock=clock, **manual())
    assert second.service.scheduler.tick() == []  # what fired before is not fired again
    clock.to_next_minute()
    assert len(second.service.scheduler.tick()) == 1
    assert [r.status for r in settled(second, task_id, 2)] == [pb.TASK_STATUS_EXECUTE_SUCCESS] * 2


def test_firings_missed_within_the_grace_run_once(start_service: Start, store_url: str) -> None:
    clock = Clock()
    first = start_service(store_url=store_url, clock=clock, **manual(misfire_grace_s=3600))
    task_id = approved_schedule(first)
    first.service.stop(grace_s=5)

    # Down for five firings; back inside the grace time.
    clock.to_next_minute()
    clock.set(clock.now + timedelta(minutes=4))
    second = start_service(store_url=store_url, clock=clock, **manual(misfire_grace_s=3600))
    assert len(second.service.scheduler.tick()) == 1
    assert second.service.scheduler.tick() == []
    done = settled(second, task_id, 1)
    assert len(done) == 1 and done[0].status == pb.TASK_STATUS_EXECUTE_SUCCESS
    note = next(e.comment for e in second.detail(task_id).events if e.action == "scheduled_run")
    assert "with 4 earlier firing(s) missed within the grace time" in note


def test_firings_missed_beyond_the_grace_are_recorded_as_missed(
    start_service: Start, store_url: str
) -> None:
    clock = Clock()
    first = start_service(store_url=store_url, clock=clock, **manual(misfire_grace_s=120))
    task_id = approved_schedule(first)
    first.service.stop(grace_s=5)

    clock.to_next_minute()
    clock.set(clock.now + timedelta(minutes=9))  # ten firings; the last two within 120 s
    second = start_service(store_url=store_url, clock=clock, **manual(misfire_grace_s=120))
    assert len(second.service.scheduler.tick()) == 1
    done = settled(second, task_id, 2)
    ran, missed = done  # newest first
    assert ran.status == pb.TASK_STATUS_EXECUTE_SUCCESS
    assert missed.status == pb.TASK_STATUS_EXECUTE_FAILED
    assert missed.error.startswith("missed: 8 firings from ")
    assert "more than the 2 min grace time ago" in missed.error
    assert second.service.scheduler.tick() == []
    assert {missed.id, ran.id} <= announced_runs(second, task_id)  # the channel hears of both
    assert firings_counted(second) == {"ran": 1, "skipped": 0, "missed": 8}


SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
    "SELECT count(*) AS n FROM c"
)


def test_runs_of_a_schedule_never_overlap(start_service: Start) -> None:
    clock = Clock()
    svc = start_service(clock=clock, **manual())
    task_id = approved_schedule(svc, sql=SLOW_SQL)
    clock.to_next_minute()
    assert len(svc.service.scheduler.tick()) == 1
    clock.to_next_minute()
    assert svc.service.scheduler.tick() == []  # the first run is still going
    skipped = runs(svc, task_id)[0]
    assert skipped.status == pb.TASK_STATUS_EXECUTE_FAILED
    assert skipped.error.startswith("skipped: run ")
    assert "was still running" in skipped.error
    # Recorded, not announced: an every-minute schedule would post a skip every minute.
    assert skipped.id not in announced_runs(svc, task_id)
    assert any(e.action == "run_skipped" for e in svc.detail(task_id).events)
    assert firings_counted(svc) == {"ran": 1, "skipped": 1, "missed": 0}
    svc.service.exports._abandon.set()  # stop the long count: the test has seen enough
    settled(svc, task_id, 2)


@pytest.mark.postgres
def test_placeholders_export_exactly_the_firings_day(
    start_service: Start, fresh_pg_url: Any, tmp_path: Any
) -> None:
    """A run fired for 2027-03-01 01:00 in Asia/Shanghai exports that day's rows, by
    Shanghai's clock, whatever the session's time zone and however late it runs."""
    engine = sa.create_engine(fresh_pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int, paid_at timestamptz)")
        conn.exec_driver_sql(
            "INSERT INTO orders VALUES "
            "(1, '2027-02-28 15:59:59Z'),"  # 02-28 23:59:59 in Shanghai
            "(2, '2027-02-28 16:00:00Z'),"  # 03-01 00:00:00
            "(3, '2027-03-01 08:30:00Z'),"  # 03-01 16:30
            "(4, '2027-03-01 15:59:59Z'),"  # 03-01 23:59:59
            "(5, '2027-03-01 16:00:00Z')"  # 03-02 00:00:00
        )
    engine.dispose()
    config = shop_config(tmp_path)
    config["datasources"] = {
        "orders_pg": {
            "url": fresh_pg_url.render_as_string(hide_password=False),
            "approvers": ["alice"],
            "allow_privileged_reader": True,  # the test server's superuser
        }
    }
    config["scheduler"] = {"enabled": False}
    clock = Clock()
    svc = start_service(config, clock=clock)
    schedule = pb.Schedule(
        trigger=pb.TRIGGER_KIND_CRON, cron="0 1 * * *", timezone="Asia/Shanghai", channel="C"
    )
    sql = (
        "SELECT id FROM orders "
        "WHERE (paid_at AT TIME ZONE 'Asia/Shanghai')::date = {{run_date}} ORDER BY id"
    )
    resp = svc.submit("dave", sql=sql, dsn="orders_pg", schedule=schedule)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))

    clock.set(datetime(2027, 2, 28, 17, 20, tzinfo=UTC))  # 20 minutes late, within the grace
    assert len(svc.service.scheduler.tick()) == 1
    ran = settled(svc, resp.task_id, 2)[0]  # the other run records the firings missed before
    assert ran.status == pb.TASK_STATUS_EXECUTE_SUCCESS, ran.error
    link = svc.as_user("dave").GetDownloadUrl(
        pb.GetDownloadUrlRequest(task_id=resp.task_id, run_id=ran.id)
    )
    body = requests.get(link.url, timeout=10).content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body))) == [["id"], ["2"], ["3"], ["4"]]
