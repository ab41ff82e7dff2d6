"""GET /api/v1/jobs: page numbers and sizes, totals, archived, filters, sorts and cursor paging."""

import base64
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.api.harness import T0, ApiHarness, insert_jobs, job_doc

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

STATUSES = ("COMPLETED", "FAILED", "CANCELED", "THRESHOLD", "RUNNING", "QUEUED")
SORTS = ("created_at", "started_at", "ended_at", "status", "definition_id")


@pytest.fixture(scope="module")
async def seeded(api: ApiHarness) -> dict[str, list[dict[str, Any]]]:
    """25 visible job instances (pairs share a creation time, to test ties) and 3 archived."""
    visible = [
        job_doc(
            status=STATUSES[i % len(STATUSES)],
            created_at=T0 + timedelta(minutes=i // 2),
            definition_id="hr-import" if i % 3 else "ad-sync",
        )
        for i in range(25)
    ]
    archived = [
        job_doc(status="COMPLETED", archived=True, created_at=T0 + timedelta(hours=5, minutes=i))
        for i in range(3)
    ]
    await insert_jobs(api, *visible, *archived)
    return {"visible": visible, "archived": archived}


def expected_order(docs: list[dict[str, Any]], sort: str) -> list[str]:
    """MongoDB's order: null below every value, ties broken by _id in the same direction."""
    field = sort.removeprefix("-")

    def key(doc: dict[str, Any]) -> tuple[Any, ...]:
        value = doc[field]
        return (0, "", doc["_id"]) if value is None else (1, value, doc["_id"])

    ordered = sorted(docs, key=key, reverse=sort.startswith("-"))
    return [d["_id"] for d in ordered]


async def get_jobs(api: ApiHarness, **params: Any) -> Any:
    response = await api.client.get("/api/v1/jobs", params=params, headers=api.auth("viewer"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_default_page_is_10_newest_first_with_totals(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    body = await get_jobs(api)
    assert body["page"] == 1
    assert body["page_size"] == 10
    assert body["total"] == 25
    assert body["pages"] == 3
    assert [i["id"] for i in body["items"]] == expected_order(seeded["visible"], "-created_at")[:10]
    assert body["next_cursor"]


async def test_pages_cover_every_job_once_and_end_empty(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    seen: list[str] = []
    for page in (1, 2, 3):
        body = await get_jobs(api, page=page, page_size=10)
        seen += [i["id"] for i in body["items"]]
    assert len(body["items"]) == 5
    assert body["next_cursor"] is None
    assert seen == expected_order(seeded["visible"], "-created_at")
    beyond = await get_jobs(api, page=4)
    assert beyond["items"] == []
    assert beyond["total"] == 25
    assert beyond["next_cursor"] is None


@pytest.mark.parametrize("size", [1, 100])
async def test_page_size_bounds_are_allowed(api: ApiHarness, seeded: Any, size: int) -> None:
    body = await get_jobs(api, page_size=size)
    assert len(body["items"]) == min(size, 25)
    assert body["pages"] == -(-25 // size)


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": 0},
        {"page_size": 101},
        {"page_size": "x"},
        {"page": 0},
        {"page": -1},
        {"page": "x"},
    ],
)
async def test_bad_page_numbers_and_sizes_are_422(api: ApiHarness, params: dict[str, Any]) -> None:
    response = await api.client.get("/api/v1/jobs", params=params, headers=api.auth("viewer"))
    assert response.status_code == 422
    (name,) = params
    assert any(error["loc"] == ["query", name] for error in response.json()["detail"])


async def test_archived_jobs_are_hidden_unless_asked_for(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    archived_ids = {d["_id"] for d in seeded["archived"]}
    default = await get_jobs(api, page_size=100)
    assert default["total"] == 25
    assert not archived_ids & {i["id"] for i in default["items"]}
    only = await get_jobs(api, archived="true", page_size=100)
    assert {i["id"] for i in only["items"]} == archived_ids
    assert all(i["archived"] for i in only["items"])
    every = await get_jobs(api, archived="any", page_size=100)
    assert every["total"] == 28
    bad = await api.client.get(
        "/api/v1/jobs", params={"archived": "maybe"}, headers=api.auth("viewer")
    )
    assert bad.status_code == 422


async def test_status_filters_one_or_several_statuses(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    visible = seeded["visible"]
    failed = await get_jobs(api, status="FAILED", page_size=100)
    assert {i["id"] for i in failed["items"]} == {
        d["_id"] for d in visible if d["status"] == "FAILED"
    }
    several = await get_jobs(api, status="failed, CANCELED", page_size=100)
    want = {d["_id"] for d in visible if d["status"] in ("FAILED", "CANCELED")}
    assert {i["id"] for i in several["items"]} == want
    assert several["total"] == len(want)


async def test_an_unknown_status_is_422_naming_the_statuses(api: ApiHarness) -> None:
    response = await api.client.get(
        "/api/v1/jobs", params={"status": "FAILED,DONE"}, headers=api.auth("viewer")
    )
    assert response.status_code == 422
    assert "'DONE' is not a job status" in response.json()["detail"]
    assert "THRESHOLD" in response.json()["detail"]


async def test_definition_and_creation_date_filters(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    visible = seeded["visible"]
    by_definition = await get_jobs(api, definition_id="ad-sync", page_size=100)
    assert {i["id"] for i in by_definition["items"]} == {
        d["_id"] for d in visible if d["definition_id"] == "ad-sync"
    }
    start, end = T0 + timedelta(minutes=3), T0 + timedelta(minutes=6)
    window = await get_jobs(
        api,
        created_from=start.isoformat(),
        # No offset: read as UTC.
        created_to=end.replace(tzinfo=None).isoformat(),
        page_size=100,
    )
    assert {i["id"] for i in window["items"]} == {
        d["_id"] for d in visible if start <= d["created_at"] <= end
    }
    assert window["total"] == 8


@pytest.mark.parametrize(
    "params",
    [
        {"created_from": "yesterday"},
        {"created_to": "2026-13-45"},
        {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
    ],
)
async def test_bad_dates_are_422(api: ApiHarness, params: dict[str, str]) -> None:
    response = await api.client.get("/api/v1/jobs", params=params, headers=api.auth("viewer"))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
async def test_each_sort_orders_like_mongodb(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]], sort: str
) -> None:
    body = await get_jobs(api, sort=sort, page_size=100)
    assert [i["id"] for i in body["items"]] == expected_order(seeded["visible"], sort)


async def test_an_unknown_sort_is_422(api: ApiHarness) -> None:
    response = await api.client.get(
        "/api/v1/jobs", params={"sort": "-priority"}, headers=api.auth("viewer")
    )
    assert response.status_code == 422
    assert "created_at" in response.json()["detail"]


@pytest.mark.parametrize(
    ("sort", "page_size"),
    [("-created_at", 7), ("created_at", 10), ("started_at", 4), ("-ended_at", 6), ("status", 5)],
)
async def test_cursor_paging_returns_each_job_once_in_order(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]], sort: str, page_size: int
) -> None:
    seen: list[str] = []
    body = await get_jobs(api, sort=sort, page_size=page_size)
    seen += [i["id"] for i in body["items"]]
    pages = 1
    while body["next_cursor"] is not None:
        body = await get_jobs(api, sort=sort, page_size=page_size, cursor=body["next_cursor"])
        assert body["page"] is None
        # A cursor page does not count: that is the cost it avoids; the first page did.
        assert body["total"] is None
        assert body["pages"] is None
        seen += [i["id"] for i in body["items"]]
        pages += 1
        assert pages <= 25, "the cursor does not move on"
    assert seen == expected_order(seeded["visible"], sort)
    assert pages == -(-25 // page_size)


async def test_cursor_paging_keeps_the_filters(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    want = [
        d
        for d in seeded["visible"]
        if d["definition_id"] == "hr-import" and d["status"] in ("COMPLETED", "QUEUED", "RUNNING")
    ]
    filters = {"definition_id": "hr-import", "status": "COMPLETED,QUEUED,RUNNING", "page_size": 2}
    body = await get_jobs(api, **filters)
    seen = [i["id"] for i in body["items"]]
    while body["next_cursor"]:
        body = await get_jobs(api, **filters, cursor=body["next_cursor"])
        seen += [i["id"] for i in body["items"]]
    assert seen == expected_order(want, "-created_at")


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", base64.urlsafe_b64encode(b'{"s":"-created_at"}').decode(), "%%%"],
)
async def test_a_forged_cursor_is_422(api: ApiHarness, cursor: str) -> None:
    response = await api.client.get(
        "/api/v1/jobs", params={"cursor": cursor}, headers=api.auth("viewer")
    )
    assert response.status_code == 422
    assert "cursor" in response.json()["detail"]


async def test_a_cursor_of_another_sort_or_with_a_page_is_422(api: ApiHarness, seeded: Any) -> None:
    first = await get_jobs(api, sort="-created_at", page_size=5)
    other_sort = await api.client.get(
        "/api/v1/jobs",
        params={"cursor": first["next_cursor"], "sort": "status"},
        headers=api.auth("viewer"),
    )
    assert other_sort.status_code == 422
    assert "sort=-created_at" in other_sort.json()["detail"]
    with_page = await api.client.get(
        "/api/v1/jobs",
        params={"cursor": first["next_cursor"], "page": 2},
        headers=api.auth("viewer"),
    )
    assert with_page.status_code == 422


async def test_an_unknown_query_parameter_is_422_naming_it(api: ApiHarness) -> None:
    response = await api.client.get(
        "/api/v1/jobs", params={"stauts": "FAILED"}, headers=api.auth("viewer")
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "stauts" in detail
    assert "status" in detail


async def test_items_carry_the_job_fields_and_their_sequences(
    api: ApiHarness, seeded: dict[str, list[dict[str, Any]]]
) -> None:
    body = await get_jobs(api, page_size=1)
    (item,) = body["items"]
    for name in (
        "id",
        "definition_id",
        "status",
        "origin",
        "archived",
        "requested_by",
        "created_at",
        "started_at",
        "ended_at",
        "sequences",
    ):
        assert name in item
    assert item["sequences"][0]["name"] == "employees"
    # The definition snapshot stays out of listings (GET /jobs/{id} has room for it).
    assert item["definition"] is None
