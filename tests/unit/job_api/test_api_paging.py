"""Sorts, opaque cursors and the keyset filter of GET /api/v1/jobs, without a database."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from job_api.views import (
    Cursor,
    InvalidCursorError,
    JobInstanceQuery,
    Page,
    Sort,
    keyset_filter,
)
from provisioning_common.statuses import JobStatus

T = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "field", "descending"),
    [
        ("created_at", "created_at", False),
        ("-ended_at", "ended_at", True),
        ("status", "status", False),
    ],
)
def test_sorts_parse(raw: str, field: str, descending: bool) -> None:
    sort = Sort.parse(raw)
    assert (sort.field, sort.descending, str(sort)) == (field, descending, raw)


@pytest.mark.parametrize("raw", ["", "-", "priority", "--created_at", "created_at desc"])
def test_unknown_sorts_are_refused_with_the_known_ones(raw: str) -> None:
    with pytest.raises(ValueError, match="definition_id"):
        Sort.parse(raw)


def test_the_mongo_sort_breaks_ties_by_id_in_the_same_direction() -> None:
    assert Sort.parse("-created_at").mongo() == [("created_at", -1), ("_id", -1)]
    assert Sort.parse("status").mongo() == [("status", 1), ("_id", 1)]


@pytest.mark.parametrize("value", [T, "THRESHOLD", None])
def test_a_cursor_survives_the_round_trip(value: datetime | str | None) -> None:
    cursor = Cursor(sort="-started_at", value=value, id="3f1c")
    token = cursor.encode()
    # URL-safe as it is: no padding, no '+' or '/'.
    assert not set(token) & set("=+/")
    assert Cursor.decode(token) == cursor


def test_a_cursor_is_taken_after_a_document() -> None:
    cursor = Cursor.after(Sort.parse("ended_at"), {"_id": "j1", "ended_at": None})
    assert (cursor.sort, cursor.value, cursor.id) == ("ended_at", None, "j1")


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "***",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _token([1, 2]),
        _token({"s": "created_at", "id": "x"}),
        _token({"s": "created_at", "id": "x", "t": "d", "v": "not a date"}),
        _token({"s": "created_at", "id": "x", "t": "q", "v": 1}),
    ],
)
def test_a_forged_cursor_is_refused(token: str) -> None:
    with pytest.raises(InvalidCursorError, match="next_cursor"):
        Cursor.decode(token)


def test_keyset_ascending_after_a_value() -> None:
    cursor = Cursor(sort="created_at", value=T, id="j5")
    assert keyset_filter(Sort.parse("created_at"), cursor) == {
        "$or": [{"created_at": T, "_id": {"$gt": "j5"}}, {"created_at": {"$gt": T}}]
    }


def test_keyset_ascending_after_a_null_goes_on_to_the_values() -> None:
    # Nulls sort first ascending: after the last null come the remaining nulls, then values.
    cursor = Cursor(sort="started_at", value=None, id="j5")
    assert keyset_filter(Sort.parse("started_at"), cursor) == {
        "$or": [{"started_at": None, "_id": {"$gt": "j5"}}, {"started_at": {"$ne": None}}]
    }


def test_keyset_descending_after_a_value_ends_with_the_nulls() -> None:
    cursor = Cursor(sort="-ended_at", value=T, id="j5")
    assert keyset_filter(Sort.parse("-ended_at"), cursor) == {
        "$or": [
            {"ended_at": T, "_id": {"$lt": "j5"}},
            {"ended_at": {"$lt": T}},
            {"ended_at": None},
        ]
    }


def test_keyset_descending_after_a_null_stays_in_the_nulls() -> None:
    cursor = Cursor(sort="-ended_at", value=None, id="j5")
    assert keyset_filter(Sort.parse("-ended_at"), cursor) == {
        "ended_at": None,
        "_id": {"$lt": "j5"},
    }


def test_the_default_query_hides_archived_jobs() -> None:
    assert JobInstanceQuery().mongo_filter() == {"archived": False}
    assert JobInstanceQuery(archived="true").mongo_filter() == {"archived": True}
    assert JobInstanceQuery(archived="any").mongo_filter() == {}


def test_filters_combine() -> None:
    query = JobInstanceQuery(
        statuses=(JobStatus.FAILED, JobStatus.CANCELED),
        definition_id="hr-import",
        created_from=T,
        created_to=T + timedelta(days=1),
    )
    assert query.mongo_filter() == {
        "archived": False,
        "status": {"$in": ["FAILED", "CANCELED"]},
        "definition_id": "hr-import",
        # Inclusive bounds written as exclusive ones a millisecond outside (same documents).
        "created_at": {
            "$gt": T - timedelta(milliseconds=1),
            "$lt": T + timedelta(days=1, milliseconds=1),
        },
    }


def test_a_bound_between_milliseconds_keeps_exactly_the_stored_dates_inside() -> None:
    between = T + timedelta(microseconds=400)
    created = JobInstanceQuery(created_from=between, created_to=between).mongo_filter()
    # Stored dates are whole milliseconds: T is before `between`, T + 1 ms after it.
    assert created["created_at"] == {"$gt": T, "$lt": T + timedelta(milliseconds=1)}


@pytest.mark.parametrize(("total", "pages"), [(0, 0), (1, 1), (10, 1), (11, 2), (25, 3)])
def test_pages_round_up(total: int, pages: int) -> None:
    assert Page(items=[], page=1, page_size=10, total=total, next_cursor=None).pages == pages
