"""Schedule.next_fire_times: the next three firings, computed by the service for every
client, while the schedule may still fire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from service_support import Running

from woxqaq.v1 import task_service_pb2 as pb

WEEKDAYS_AT_NINE = pb.Schedule(
    trigger=pb.TRIGGER_KIND_CRON, cron="0 9 * * MON-FRI", timezone="Asia/Shanghai", channel="C1"
)


def firings(task: pb.TaskListData) -> list[datetime]:
    return [t.ToDatetime(tzinfo=UTC) for t in task.schedule.next_fire_times]


def test_next_firings_come_from_the_service_until_the_schedule_ends(
    start_service: Callable[..., Running],
) -> None:
    svc = start_service()
    task_id = svc.submit("zoe", sql="SELECT 1 AS one", schedule=WEEKDAYS_AT_NINE).task_id
    detail = svc.detail(task_id)
    times = firings(detail.task)
    assert len(times) == 3 and times == sorted(times) and times[0] > datetime.now(UTC)
    for t in times:
        local = t.astimezone(ZoneInfo("Asia/Shanghai"))
        assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5
    listed = svc.as_user("zoe").ListTaskDetail(pb.ListTaskRequest(task_id=task_id)).data[0]
    assert firings(listed) == times

    svc.as_user("zoe").Cancel(pb.CancelRequest(task_id=int(task_id), operator="zoe"))
    assert firings(svc.detail(task_id).task) == []  # a canceled schedule never fires again
    once = svc.submit("zoe", sql="SELECT 1 AS one").task_id
    assert firings(svc.detail(once).task) == []
