"""When a schedule fires: the latest firing due, missed firings run once, time zones and DST."""

from datetime import UTC, datetime

import pytest
from job_api.domain.schedules import due_firing, firing_request_id, latest_firing, next_firing
from provisioning_common.definition_options import Schedule
from pydantic import ValidationError


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_an_interval_fires_on_the_same_instants_everywhere() -> None:
    every_30 = Schedule(interval_minutes=30)
    assert latest_firing(every_30, utc(2026, 12, 6, 5, 44, 59)) == utc(2026, 12, 6, 5, 30)
    assert latest_firing(every_30, utc(2026, 12, 6, 6, 0)) == utc(2026, 12, 6, 6, 0)


def test_nothing_is_due_before_the_next_firing() -> None:
    every_30 = Schedule(interval_minutes=30)
    assert due_firing(every_30, utc(2026, 12, 6, 5, 30), utc(2026, 12, 6, 5, 59, 59)) is None


def test_firings_missed_while_down_are_run_once_as_the_latest() -> None:
    every_30 = Schedule(interval_minutes=30)
    due = due_firing(every_30, utc(2026, 12, 6, 1, 0), utc(2026, 12, 6, 5, 31))
    assert due is not None
    assert due.at == utc(2026, 12, 6, 5, 30)
    assert due.missed == 8  # 01:30 … 05:00


def test_cron_is_read_in_its_time_zone_across_a_dst_change() -> None:
    # 06:00 in Paris is 05:00 UTC in winter, 04:00 UTC in summer (DST began 2026-03-29).
    six_paris = Schedule(cron="0 6 * * *", timezone="Europe/Paris")
    assert latest_firing(six_paris, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 28, 5, 0)
    assert latest_firing(six_paris, utc(2026, 3, 30, 12, 0)) == utc(2026, 3, 30, 4, 0)
    due = due_firing(six_paris, utc(2026, 3, 27, 5, 0), utc(2026, 3, 30, 12, 0))
    assert due is not None
    assert (due.at, due.missed) == (utc(2026, 3, 30, 4, 0), 2)


def test_a_firing_at_exactly_now_is_due() -> None:
    hourly = Schedule(cron="0 * * * *")
    due = due_firing(hourly, utc(2026, 12, 6, 5, 0), utc(2026, 12, 6, 6, 0))
    assert due is not None
    assert due.at == utc(2026, 12, 6, 6, 0)


def test_the_next_firing_is_strictly_after_now_in_the_schedules_zone() -> None:
    every_30 = Schedule(interval_minutes=30)
    assert next_firing(every_30, utc(2026, 12, 6, 5, 44)) == utc(2026, 12, 6, 6, 0)
    assert next_firing(every_30, utc(2026, 12, 6, 6, 0)) == utc(2026, 12, 6, 6, 30)
    six_paris = Schedule(cron="0 6 * * *", timezone="Europe/Paris")
    assert next_firing(six_paris, utc(2026, 3, 28, 5, 0)) == utc(2026, 3, 29, 4, 0)


def test_the_request_id_names_the_definition_and_the_firing() -> None:
    assert (
        firing_request_id("hr-import", utc(2026, 12, 6, 5, 30))
        == "schedule:hr-import:2026-12-06T05:30:00Z"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cron": "61 * * * *"}, "cron:"),
        ({"cron": "*/5 * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({}, "give either cron or interval_minutes"),
        ({"cron": "* * * * *", "interval_minutes": 5}, "give either cron or interval_minutes"),
        ({"interval_minutes": 0}, "greater than or equal to 1"),
    ],
)
def test_a_wrong_schedule_is_refused_saying_why(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(body)
