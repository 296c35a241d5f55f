"""Time windows of scheduled exports on real servers: rows one per minute around a firing,
in three timezones (New York changes to summer time that day), and the exact rows a
`{{prev_run_time}}`..`{{run_time}}` window exports from a column with a time zone, one
without (the schedule's wall time) and a date.

Each schedule fires at 00:00 and 00:50, 23:00 and 23:50 local time (New York: around its
DST change), so a firing has its previous one ten minutes (by the wall clock) before it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from fake_clock import Clock
from service_support import Running, settled, shop_config

from woxqaq.v1 import task_service_pb2 as pb

pytestmark = [pytest.mark.postgres, pytest.mark.mysql]


@dataclass(frozen=True)
class Window:
    zone: str
    cron: str
    firing: datetime  # UTC
    previous: datetime  # UTC: the firing before it

    @property
    def table(self) -> str:
        return "w_" + self.zone.split("/")[-1].lower()

    def minutes(self) -> list[datetime]:
        """One instant per minute, 15 minutes before the firing to 5 after (ids 0..20)."""
        return [self.firing + timedelta(minutes=m) for m in range(-15, 6)]

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.zone))


SHANGHAI = Window(  # 2027-03-14 00:00 CST; the previous firing 23:50 the day before
    "Asia/Shanghai", "0,50 0,23 * * *", datetime(2027, 3, 13, 16, 0, tzinfo=UTC),
    datetime(2027, 3, 13, 15, 50, tzinfo=UTC),
)  # fmt: skip
KOLKATA = Window(  # 2027-03-14 00:00 IST (+05:30)
    "Asia/Kolkata", "0,50 0,23 * * *", datetime(2027, 3, 13, 18, 30, tzinfo=UTC),
    datetime(2027, 3, 13, 18, 20, tzinfo=UTC),
)  # fmt: skip
# New York, 2027-03-14: 01:50 EST, then 03:00 EDT: the window spans the clock change.
NEW_YORK_ACROSS_DST = Window(
    "America/New_York", "0,50 1,3 * * *", datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
    datetime(2027, 3, 14, 6, 50, tzinfo=UTC),
)  # fmt: skip
# New York the same day, after the change: 08:50 and 09:00 EDT.
NEW_YORK_DST_DAY = Window(
    "America/New_York", "0,50 8,9 * * *", datetime(2027, 3, 14, 13, 0, tzinfo=UTC),
    datetime(2027, 3, 14, 12, 50, tzinfo=UTC),
)  # fmt: skip

SQL = """
SELECT 'a_tz' AS col, id FROM {t} WHERE at_tz >= {{{{prev_run_time}}}} AND at_tz < {{{{run_time}}}}
UNION ALL
SELECT 'b_wall', id FROM {t} WHERE at_wall >= {{{{prev_run_time}}}} AND at_wall < {{{{run_time}}}}
UNION ALL
SELECT 'c_day', id FROM {t} WHERE on_day = {{{{prev_run_date}}}}
ORDER BY 1, 2
"""


def expected(w: Window) -> list[list[str]]:
    rows = [["col", "id"]]
    ids = range(len(w.minutes()))
    inside = [i for i in ids if w.previous <= w.minutes()[i] < w.firing]
    rows += [["a_tz", str(i)] for i in inside]
    rows += [["b_wall", str(i)] for i in inside]
    prev_day = w.local(w.previous).date()
    rows += [["c_day", str(i)] for i in ids if w.local(w.minutes()[i]).date() == prev_day]
    return rows


def create_rows(engine: sa.Engine, w: Window, dialect: str) -> None:
    tz_type, wall_type = (
        ("timestamptz", "timestamp") if dialect == "pg" else ("TIMESTAMP NULL", "DATETIME")
    )
    with engine.begin() as conn:
        if dialect == "mysql":
            conn.exec_driver_sql("SET time_zone = '+00:00'")  # TIMESTAMP values given in UTC
        conn.exec_driver_sql(
            f"CREATE TABLE {w.table} (id int, at_tz {tz_type}, at_wall {wall_type}, on_day date)"
        )
        for i, moment in enumerate(w.minutes()):
            wall = w.local(moment).replace(tzinfo=None)
            conn.execute(
                sa.text(f"INSERT INTO {w.table} VALUES (:i, :tz, :wall, :day)"),
                {
                    "i": i,
                    "tz": moment if dialect == "pg" else moment.replace(tzinfo=None),
                    "wall": wall,
                    "day": wall.date(),
                },
            )


def approved(svc: Running, w: Window, dsn: str) -> str:
    schedule = pb.Schedule(trigger=pb.TRIGGER_KIND_CRON, cron=w.cron, timezone=w.zone, channel="C")
    resp = svc.submit("dave", sql=SQL.format(t=w.table), dsn=dsn, schedule=schedule)
    assert resp.ok, svc.detail(resp.task_id).precheck_messages
    svc.as_user("alice").Approve(pb.ApproveRequest(task_id=int(resp.task_id), approver="alice"))
    return resp.task_id


def exported(svc: Running, task_id: str, firing: datetime) -> list[list[str]]:
    """The rows of the run of `firing` (earlier firings are recorded as missed)."""
    got = settled(svc, task_id, 1)
    ran = [r for r in got if r.status == pb.TASK_STATUS_EXECUTE_SUCCESS]
    assert len(ran) == 1, [(r.status, r.error) for r in got]
    link = svc.as_user("dave").GetDownloadUrl(
        pb.GetDownloadUrlRequest(task_id=task_id, run_id=ran[0].id)
    )
    body = requests.get(link.url, timeout=10).content.decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


def test_windows_select_exactly_their_rows_in_every_timezone_and_column_type(
    start_service: Callable[..., Running],
    fresh_pg_url: Any,
    fresh_mysql_url: Any,
    tmp_path: Any,
) -> None:
    pg = sa.create_engine(fresh_pg_url)
    mysql_url = fresh_mysql_url
    my = sa.create_engine(mysql_url)
    pg_windows = [SHANGHAI, KOLKATA, NEW_YORK_ACROSS_DST]
    # MariaDB here has no time zone tables: the session runs at the firing's UTC offset,
    # exact for windows on one side of a DST change (README: Scheduled exports).
    my_windows = [SHANGHAI, KOLKATA, NEW_YORK_DST_DAY]
    for w in pg_windows:
        create_rows(pg, w, "pg")
    for w in my_windows:
        create_rows(my, w, "mysql")
    pg.dispose()
    my.dispose()

    config = shop_config(tmp_path)
    config["datasources"] = {
        name: {
            "url": url.render_as_string(hide_password=False),
            "approvers": ["alice"],
            "allow_privileged_reader": True,  # the test server's superuser
        }
        for name, url in (("pg", fresh_pg_url), ("maria", mysql_url))
    }
    config["scheduler"] = {"enabled": False}
    clock = Clock()
    svc = start_service(config, clock=clock)
    tasks = {
        (dsn, w): approved(svc, w, dsn)
        for dsn, windows in (("pg", pg_windows), ("maria", my_windows))
        for w in windows
    }

    for firing in sorted({w.firing for _, w in tasks}):
        clock.set(firing + timedelta(seconds=5))
        svc.service.scheduler.tick()
        for (dsn, w), task_id in tasks.items():
            if w.firing == firing:
                assert exported(svc, task_id, firing) == expected(w), (dsn, w.zone)


def test_the_windows_are_what_the_schedule_says() -> None:
    """The fixtures mean what their names say (local times, ten minutes apart)."""
    for w in (SHANGHAI, KOLKATA, NEW_YORK_DST_DAY):
        assert w.firing - w.previous == timedelta(minutes=10)
    assert SHANGHAI.local(SHANGHAI.firing).time() == datetime.min.time()
    assert KOLKATA.local(KOLKATA.firing).date() == date(2027, 3, 14)
    across = NEW_YORK_ACROSS_DST
    assert f"{across.local(across.previous):%H:%M %Z}" == "01:50 EST"
    assert f"{across.local(across.firing):%H:%M %Z}" == "03:00 EDT"
