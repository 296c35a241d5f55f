"""Schedules: crontab meaning, DST-correct firings, what is due after an outage, placeholders."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain import placeholders
from service.domain.model import Schedule, Trigger
from service.domain.schedule import (
    DueFirings,
    crontab_day_of_week,
    due_firings,
    fire_times,
    next_fire_times,
    schedule_problems,
)


def cron(expr: str, tz: str = "UTC", channel: str = "C_FINANCE") -> Schedule:
    return Schedule(trigger=Trigger.CRON, cron=expr, timezone=tz, channel=channel)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def zulu(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") for t in times]


# -- DST: 30 2 * * * across the 2027 changes ---------------------------------------------
# Europe/Berlin: summer time from 2027-03-28 02:00 (02:30 does not exist that night),
# winter time from 2027-10-31 03:00 (02:30 happens twice). America/New_York: from
# 2027-03-14 02:00 (no 02:30) and back on 2027-11-07 02:00 (01:00-02:00 twice).


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        # Spring, Berlin: 02:30 CET = 01:30Z; the missing 02:30 runs at 03:30 CEST = 01:30Z;
        # from then on 02:30 CEST = 00:30Z.
        (
            "Europe/Berlin",
            utc(2027, 3, 26, 12),
            ["2027-03-27 01:30Z", "2027-03-28 01:30Z", "2027-03-29 00:30Z"],
        ),
        # Autumn, Berlin: the twice-happening 02:30 fires once, at its first (CEST) pass.
        (
            "Europe/Berlin",
            utc(2027, 10, 29, 12),
            ["2027-10-30 00:30Z", "2027-10-31 00:30Z", "2027-11-01 01:30Z"],
        ),
        # Spring, New York: 02:30 EST = 07:30Z; the missing 02:30 runs at 03:30 EDT = 07:30Z.
        (
            "America/New_York",
            utc(2027, 3, 12, 12),
            ["2027-03-13 07:30Z", "2027-03-14 07:30Z", "2027-03-15 06:30Z"],
        ),
        # Autumn, New York: 02:30 comes after the repeated hour, so it happens once a day.
        (
            "America/New_York",
            utc(2027, 11, 5, 12),
            ["2027-11-06 06:30Z", "2027-11-07 07:30Z", "2027-11-08 07:30Z"],
        ),
    ],
)
def test_next_fire_times_across_dst(tz: str, after: datetime, expected: list[str]) -> None:
    assert zulu(next_fire_times(cron("30 2 * * *", tz), 3, after)) == expected


def test_fire_times_are_in_the_schedules_timezone() -> None:
    first = next_fire_times(cron("30 2 * * *", "Europe/Berlin"), 1, utc(2027, 7, 1))[0]
    assert (first.hour, first.minute, first.tzname()) == (2, 30, "CEST")


def test_hourly_schedule_keeps_every_hour_through_the_repeated_hour() -> None:
    """Each wall-clock time once: 02:00 is not run twice, and 03:00 CET still runs."""
    times = next_fire_times(cron("0 * * * *", "Europe/Berlin"), 4, utc(2027, 10, 30, 22, 30))
    assert zulu(times) == [
        "2027-10-30 23:00Z",  # 01:00 CEST
        "2027-10-31 00:00Z",  # 02:00 CEST
        "2027-10-31 02:00Z",  # 03:00 CET (02:00 CET, the second pass, is skipped)
        "2027-10-31 03:00Z",
    ]


def ticks(schedule: Schedule, start: datetime, end: datetime) -> list[str]:
    """The runs a scheduler ticking every minute from `start` to `end` starts, each tick
    searching from the last firing it dealt with, as the service does."""
    runs, dealt_with, now = [], start, start
    while now <= end:
        due = due_firings(schedule, dealt_with, now, timedelta(minutes=5))
        if due.run is not None:
            runs.append(due.run)
        dealt_with = due.run or due.last_missed or dealt_with
        now += timedelta(minutes=1)
    return [f"{t:%H:%M %Z}" for t in runs]


def test_a_scheduler_ticking_through_the_repeated_hour_runs_each_wall_time_once() -> None:
    # New York, 2027-11-07: 01:00-02:00 happens twice (EDT, then EST).
    daily = cron("30 1 * * *", "America/New_York")
    assert ticks(daily, utc(2027, 11, 7, 4), utc(2027, 11, 7, 9)) == ["01:30 EDT"]
    hourly = cron("0 * * * *", "Europe/Berlin")  # Berlin, 2027-10-31 03:00 CEST -> 02:00 CET
    assert ticks(hourly, utc(2027, 10, 30, 23, 30), utc(2027, 10, 31, 3, 30)) == [
        "02:00 CEST",
        "03:00 CET",
        "04:00 CET",
    ]


def test_a_spring_gap_firing_reads_as_the_wall_time_it_runs_at() -> None:
    # New York, 2027-03-14: 02:30 does not exist; the firing runs at 07:30Z = 03:30 EDT.
    (gap,) = next_fire_times(cron("30 2 * * *", "America/New_York"), 1, utc(2027, 3, 13, 12))
    assert f"{gap:%Y-%m-%d %H:%M %Z}" == "2027-03-14 03:30 EDT"
    values = placeholders.logical_values(
        EVERY_PLACEHOLDER, cron("30 2 * * *", "America/New_York"), gap
    )
    assert values["run_time"] == datetime(2027, 3, 14, 3, 30, tzinfo=ZoneInfo("America/New_York"))
    assert values["run_time"].utcoffset() == timedelta(hours=-4)


def test_fire_times_are_strictly_after_and_up_to_until() -> None:
    s = cron("*/15 * * * *")
    got = list(fire_times(s, utc(2027, 1, 1, 9, 0), until=utc(2027, 1, 1, 10, 0)))
    assert zulu(got) == [
        "2027-01-01 09:15Z",
        "2027-01-01 09:30Z",
        "2027-01-01 09:45Z",
        "2027-01-01 10:00Z",
    ]


# -- crontab's day-of-week, not APScheduler's --------------------------------------------


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("MON-FRI", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1,3,5", "mon,wed,fri"),
        ("sat,sun", "sun,sat"),
    ],
)
def test_day_of_week_means_what_crontab_means(field: str, days: str) -> None:
    assert crontab_day_of_week(field) == days


def test_weekday_schedule_skips_the_weekend() -> None:
    # 2027-01-01 is a Friday.
    times = next_fire_times(cron("0 9 * * 1-5", "Asia/Shanghai"), 3, utc(2027, 1, 1, 2))
    assert [f"{t:%a %H:%M}" for t in times] == ["Mon 09:00", "Tue 09:00", "Wed 09:00"]


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (cron("0 9 * *"), "has 4 fields; use five"),
        (cron("61 9 * * *"), "is not valid"),
        (cron("0 9 * * 8"), "out of range"),
        (cron("0 9 * * FRI-MON"), "runs backwards"),
        (cron("0 9 31 2 *"), "never fires"),
        (cron("0 9 * * *", "Mars/Olympus"), "not an IANA timezone"),
        (Schedule(trigger=Trigger.CURRENT, cron="0 9 * * *"), "set trigger to CRON"),
    ],
)
def test_bad_schedules_say_what_to_fix(schedule: Schedule, words: str) -> None:
    problems = schedule_problems(schedule)
    assert any(words in p for p in problems), problems


def test_good_schedule_has_no_problems() -> None:
    assert schedule_problems(cron("0 9 * * MON-FRI", "Asia/Shanghai")) == []


def test_a_schedule_without_a_channel_is_valid() -> None:
    # Teams without Slack: each run is kept for download instead of being posted.
    assert schedule_problems(cron("0 9 * * MON-FRI", "Asia/Shanghai", channel="")) == []


# -- what is due -------------------------------------------------------------------------

GRACE = timedelta(minutes=10)


def test_nothing_due_before_the_next_firing() -> None:
    due = due_firings(cron("* * * * *"), utc(2027, 1, 1, 9, 0), utc(2027, 1, 1, 9, 0, 59), GRACE)
    assert due == DueFirings()  # nothing to run, nothing missed


def test_a_firing_is_due_once_its_time_comes() -> None:
    due = due_firings(cron("* * * * *"), utc(2027, 1, 1, 9, 0), utc(2027, 1, 1, 9, 1, 0), GRACE)
    assert (due.run, due.coalesced, due.missed) == (utc(2027, 1, 1, 9, 1), 0, 0)


def test_missed_firings_within_grace_run_once_for_the_latest() -> None:
    due = due_firings(cron("* * * * *"), utc(2027, 1, 1, 9, 0), utc(2027, 1, 1, 9, 5, 30), GRACE)
    assert (due.run, due.coalesced, due.missed) == (utc(2027, 1, 1, 9, 5), 4, 0)


def test_firings_beyond_grace_are_missed_and_the_rest_coalesced() -> None:
    due = due_firings(cron("0 * * * *"), utc(2027, 1, 1, 0, 0), utc(2027, 1, 1, 5, 5), GRACE)
    assert (due.missed, due.run, due.coalesced) == (4, utc(2027, 1, 1, 5), 0)
    assert (due.first_missed, due.last_missed) == (utc(2027, 1, 1, 1), utc(2027, 1, 1, 4))
    due = due_firings(
        cron("0 * * * *"), utc(2027, 1, 1, 0, 0), utc(2027, 1, 1, 5, 5), timedelta(hours=2)
    )
    assert due.missed == 3 and due.run == utc(2027, 1, 1, 5) and due.coalesced == 1


def test_a_very_long_outage_is_dealt_with_in_bounded_steps() -> None:
    due = due_firings(cron("* * * * *"), utc(2026, 1, 1), utc(2027, 1, 1), GRACE)
    assert due.missed == 10_000 and due.run is None
    assert due.last_missed == utc(2026, 1, 1) + timedelta(minutes=10_000)


# -- placeholders ------------------------------------------------------------------------

EVERY_PLACEHOLDER = (
    "SELECT * FROM orders WHERE d BETWEEN {{prev_run_date}} AND {{run_date}}"
    " AND t BETWEEN {{prev_run_time}} AND {{run_time}}"
)


def test_placeholders_are_the_firings_day_in_its_timezone() -> None:
    s = cron("0 1 * * *", "Asia/Shanghai")
    # The firing of 2027-03-01 01:00 Shanghai time is 2027-02-28 17:00 UTC.
    values = placeholders.logical_values(EVERY_PLACEHOLDER, s, utc(2027, 2, 28, 17))
    assert values["run_date"] == date(2027, 3, 1)
    assert values["prev_run_date"] == date(2027, 2, 28)
    # Instants in the schedule's timezone, not naive wall times a session would misread.
    assert values["run_time"] == utc(2027, 2, 28, 17)
    assert values["prev_run_time"] == utc(2027, 2, 27, 17)
    assert values["run_time"].tzinfo == ZoneInfo("Asia/Shanghai")


def test_previous_firing_of_a_weekday_schedule_skips_the_weekend() -> None:
    s = cron("0 9 * * MON-FRI", "Asia/Shanghai")
    monday = datetime(2027, 3, 1, 1, tzinfo=UTC)  # 09:00 Shanghai, Monday 2027-03-01
    assert placeholders.logical_values(EVERY_PLACEHOLDER, s, monday)["prev_run_date"] == date(
        2027, 2, 26
    )


@pytest.mark.parametrize(
    ("expr", "tz", "logical", "previous"),
    [
        # The day after New York's repeated hour: the previous 01:30 is its first pass.
        ("30 1 * * *", "America/New_York", utc(2027, 11, 8, 6, 30), datetime(2027, 11, 7, 1, 30)),
        # Berlin's 03:00 CET follows 02:00 CEST (02:00 CET never fired).
        ("0 * * * *", "Europe/Berlin", utc(2027, 10, 31, 2), datetime(2027, 10, 31, 2, 0)),
        # Half-hourly: 03:00 CET follows 02:30 CEST; 02:00 and 02:30 CET never fired.
        ("0,30 * * * *", "Europe/Berlin", utc(2027, 10, 31, 2), datetime(2027, 10, 31, 2, 30)),
    ],
)
def test_previous_firing_around_the_repeated_hour(
    expr: str, tz: str, logical: datetime, previous: datetime
) -> None:
    values = placeholders.logical_values(EVERY_PLACEHOLDER, cron(expr, tz), logical)
    assert values["prev_run_time"].replace(tzinfo=None) == previous


def test_a_statement_without_placeholders_gets_no_values() -> None:
    s = cron("* * * * *")
    assert placeholders.logical_values("SELECT 1", s, utc(2027, 3, 1)) == {}


def test_a_run_by_hand_uses_its_start_and_the_day_before() -> None:
    values = placeholders.logical_values(EVERY_PLACEHOLDER, Schedule(), utc(2027, 3, 1, 12))
    assert (values["run_date"], values["prev_run_date"]) == (date(2027, 3, 1), date(2027, 2, 28))


def test_a_run_by_hand_reads_its_datasources_timezone() -> None:
    zone = placeholders.task_zone(Schedule(), "America/New_York")
    # 2027-03-14 12:00 UTC is 08:00 EDT; the day before, 08:00 EST, is 23 hours earlier.
    values = placeholders.logical_values(EVERY_PLACEHOLDER, Schedule(), utc(2027, 3, 14, 12), zone)
    assert values["run_time"].replace(tzinfo=None) == datetime(2027, 3, 14, 8)
    elapsed = values["run_time"].astimezone(UTC) - values["prev_run_time"].astimezone(UTC)
    assert elapsed == timedelta(hours=23)
    assert values["prev_run_date"] == date(2027, 3, 13)


def test_a_one_off_tasks_unchecked_timezone_does_not_break_its_run() -> None:
    one_off = Schedule(trigger=Trigger.CURRENT, timezone="Mars/Olympus")
    assert placeholders.logical_values(EVERY_PLACEHOLDER, one_off, utc(2027, 3, 1, 23))[
        "run_date"
    ] == date(2027, 3, 1)


def test_placeholders_become_binds_and_other_colons_stay_text() -> None:
    sql = "SELECT ':x', '10:30' FROM t WHERE d = {{ run_date }} AND t < {{run_time}}"
    assert placeholders.to_bind_params(sql) == (
        r"SELECT '\:x', '10\:30' FROM t WHERE d = :run_date AND t < :run_time"
    )
