"""The index ranges a page of job instances is read from (`window_filters`), without a database."""

import itertools
from datetime import UTC, datetime, timedelta

from job_api.views import (
    FIRST_WINDOW,
    MAX_WINDOWS,
    WINDOW_GROWTH,
    Cursor,
    JobInstanceQuery,
    Sort,
    window_filters,
)
from provisioning_common.statuses import JobStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
NEWEST_FIRST = Sort(field="created_at", descending=True)


def test_the_first_page_walks_down_from_now_in_widening_windows_then_the_nulls() -> None:
    ranges = window_filters(JobInstanceQuery(), NOW)
    assert ranges is not None
    # Open towards the newer end: a job stamped a little ahead of this clock is listed.
    assert ranges[0] == {"archived": False, "created_at": {"$gt": NOW - FIRST_WINDOW - MS}}
    assert ranges[1] == {
        "archived": False,
        "created_at": {
            "$lt": NOW - FIRST_WINDOW,
            "$gt": NOW - FIRST_WINDOW * (1 + WINDOW_GROWTH) - MS,
        },
    }
    assert len(ranges) == MAX_WINDOWS + 2
    # The last window is open at the old end, then the jobs without the date.
    assert set(ranges[-2]["created_at"]) == {"$lt"}
    assert ranges[-1] == {"archived": False, "created_at": None}


def test_the_windows_touch_without_overlapping() -> None:
    ranges = window_filters(JobInstanceQuery(), NOW)
    assert ranges is not None
    dates = [r["created_at"] for r in ranges[:-1]]
    for newer, older in itertools.pairwise(dates):
        # Exclusive bounds a millisecond apart: every whole millisecond in exactly one window.
        assert older["$lt"] == newer["$gt"] + MS


def test_a_cursor_page_starts_with_the_ties_of_the_cursor_value() -> None:
    cursor = Cursor(sort="-created_at", value=NOW - timedelta(days=3), id="j5")
    ranges = window_filters(JobInstanceQuery(statuses=(JobStatus.FAILED,), cursor=cursor), NOW)
    assert ranges is not None
    assert ranges[0] == {
        "archived": False,
        "status": "FAILED",  # one status is an equality: an index prefix on SecantusDB
        "created_at": NOW - timedelta(days=3),
        "_id": {"$lt": "j5"},
    }
    assert ranges[1]["created_at"] == {
        "$lt": NOW - timedelta(days=3),
        "$gt": NOW - timedelta(days=3) - FIRST_WINDOW - MS,
    }


def test_a_cursor_in_the_nulls_stays_in_the_nulls() -> None:
    cursor = Cursor(sort="-ended_at", value=None, id="j5")
    query = JobInstanceQuery(sort=Sort(field="ended_at", descending=True), cursor=cursor)
    assert window_filters(query, NOW) == [
        {"archived": False, "ended_at": None, "_id": {"$lt": "j5"}}
    ]


def test_the_creation_dates_asked_for_bound_the_windows() -> None:
    query = JobInstanceQuery(created_from=NOW - timedelta(hours=3), created_to=NOW - FIRST_WINDOW)
    ranges = window_filters(query, NOW)
    assert ranges == [
        {
            "archived": False,
            "created_at": {
                "$lt": NOW - FIRST_WINDOW + MS,
                "$gt": NOW - 2 * FIRST_WINDOW,
            },
        },
        {
            "archived": False,
            "created_at": {
                "$lt": NOW - 2 * FIRST_WINDOW + MS,
                "$gt": NOW - timedelta(hours=3) - MS,
            },
        },
    ]


def test_an_ascending_cursor_walks_up_from_its_value() -> None:
    cursor = Cursor(sort="started_at", value=NOW, id="j5")
    query = JobInstanceQuery(sort=Sort(field="started_at", descending=False), cursor=cursor)
    ranges = window_filters(query, NOW)
    assert ranges is not None
    assert ranges[0] == {"archived": False, "started_at": NOW, "_id": {"$gt": "j5"}}
    assert ranges[1]["started_at"] == {"$gt": NOW, "$lt": NOW + FIRST_WINDOW + MS}
    assert ranges[-1]["started_at"] == {"$gt": ranges[-2]["started_at"]["$lt"] - MS}


def test_one_query_where_no_window_is_an_index_range() -> None:
    several = JobInstanceQuery(statuses=(JobStatus.FAILED, JobStatus.CANCELED))
    by_status = JobInstanceQuery(sort=Sort(field="status", descending=False))
    every = JobInstanceQuery(archived="any")
    other_date = JobInstanceQuery(
        sort=Sort(field="started_at", descending=True), created_from=NOW - timedelta(days=1)
    )
    oldest_first = JobInstanceQuery(sort=Sort(field="created_at", descending=False))
    status_and_definition = JobInstanceQuery(statuses=(JobStatus.FAILED,), definition_id="hr")
    for query in (several, by_status, every, other_date, oldest_first, status_and_definition):
        assert window_filters(query, NOW) is None, query
