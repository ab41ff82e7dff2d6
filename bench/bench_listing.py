"""`GET /api/v1/jobs` of a running job-api against raw PyMongo reading the same page on the
same server: p50 and p95 of the first page, a page by number deep in the list (skip) and a page
after a cursor at the same depth (keyset), each without and with a status filter, at each size
of the read model. The cursor query's `explain` is reported: whether an index bounds it.

Sizes: BENCH_LISTING_SIZES (comma separated, default 10000; 100000 and 1000000 by setting it),
samples per figure: BENCH_LISTING_SAMPLES (default 5). Run alone:
`KAFKA_BOOTSTRAP_SERVERS=… MONGO_URI=… python -m bench.bench_listing`."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from job_api.adapters.job_instances import JobInstanceStore
from job_api.auth.tokens import hash_secret
from job_api.domain.job_instance import (
    SUMMARY_FIELDS,
    AppliedCounts,
    JobInstance,
    PlannedCounts,
    SequenceInstance,
)
from job_api.views import Cursor, JobInstanceQuery, Sort, keyset_filter
from provisioning_common.settings import MongoSettings
from provisioning_common.statuses import JobStatus
from pymongo.asynchronous.database import AsyncDatabase

from bench.system import system
from bench.timing import percentile, report_goal

GOAL = 1.2
PAGE_SIZE = 10
CHUNK = 5_000
# How deep the deep pages are: 90% of the way down the unfiltered (or filtered) list.
DEPTH = 0.9
DEFINITIONS = ("hr-import", "contractors-import", "groups-sync", "directory-sync", "app-accounts")
STATUS_FILTER = JobStatus.FAILED

ABOUT = [
    "`GET /api/v1/jobs` of a running job-api process (HTTP, API key, validation, the response "
    "model) against raw PyMongo asking the same server for the same page: the total "
    "(`count_documents` with the same filter, as the API returns it) and the page (same filter, "
    "sort `created_at, _id` descending, projection, skip or keyset range, limit). Three pages, "
    f"each without and with `status={STATUS_FILTER}` (5% of the jobs): the first, the page by "
    f"number {DEPTH:.0%} down the list, and the page after a cursor at the same depth. The read "
    "model is loaded with `insert_many` of documents built with `JobInstance`'s constructors "
    "(1 to 3 sequences with plans, a definition snapshot), then the store's own indexes. Goal: "
    f"p50 and p95 each ≤ {GOAL}x raw.",
    "",
    "Sizes: `BENCH_LISTING_SIZES` (default `10000`; the issue's `100000,1000000` by setting "
    "it), samples: `BENCH_LISTING_SAMPLES` (default 5; p95 of 5 is their worst). The default "
    "stops at 10,000 because of the server: SecantusDB reads every document the filter "
    "matches to sort them in memory, so each page costs ~0.3 ms per matching document whatever "
    "the index (about 3 s at 10,000, 30 s at 100,000, and by extrapolation 5 minutes at "
    "1,000,000 per request; loading 1,000,000 would take, at this run's rates, ~5 minutes "
    "of inserts and ~30 of index builds: not tried). On a real mongod (`MONGO_URI`) the same "
    "run measures the index range scans.",
    "",
    "What dominates, on SecantusDB: the server. Ours and raw ask it the same two queries, so "
    "the p50 ratios sit at 0.9-1.3 and move with the machine's load more than with our code; "
    "what the API adds is HTTP, the API key lookup (one indexed `find_one`, a few ms, its raw "
    "cost is noted below), validating the query and the page's models — tens of ms at most "
    "against pages of 0.4-10 s. The status filter is quick (the equality prefix of "
    "`archived, status, created_at, _id` leaves 5% of the documents to sort), the unfiltered "
    "pages read every document. The cursor page is not quicker than the page by number here: "
    "SecantusDB plans every filter holding an `$or` — the keyset range `(created_at, _id) < "
    "(v, id)` is one — as a COLLSCAN (its explain below: no index, every document examined), "
    "also when the equality fields are distributed into each branch (tried: same plan). "
    "The query is built for MongoDB's planner, which bounds each `$or` branch on the index; "
    "that is not measured on this machine (no mongod).",
]


def sizes() -> list[int]:
    return [int(s) for s in os.environ.get("BENCH_LISTING_SIZES", "10000").split(",") if s]


def samples() -> int:
    return int(os.environ.get("BENCH_LISTING_SAMPLES", "5"))


def _status(i: int) -> str:
    """Most jobs finished well; a few failed, were canceled or wait at a threshold."""
    if i % 20 == 7:
        return "FAILED"
    if i % 50 == 11:
        return "CANCELED"
    if i % 100 == 13:
        return "THRESHOLD"
    return "COMPLETED"


def job_instance(i: int, start: datetime) -> dict[str, Any]:
    """The i-th job instance as the projector stores it, built with the read model's own
    constructors: one to three sequences with their plans, a definition snapshot."""
    created = start + timedelta(seconds=37 * i)
    job_id = f"{i:08x}-0000-5000-8000-{i:012x}"
    status = _status(i)
    definition_id = DEFINITIONS[i % len(DEFINITIONS)]
    names = ["employees", "groups", "managers"][: 1 + i % 3]
    sequences = []
    for index, name in enumerate(names):
        planned = PlannedCounts(create=i % 7, update=i % 13, delete=i % 3, unchanged=40_000)
        done = status == "COMPLETED" or index < len(names) - 1
        sequences.append(
            SequenceInstance(
                index=index,
                name=name,
                status="COMPLETED" if done else status,
                attempt=1,
                started_at=created + timedelta(seconds=1 + index),
                ended_at=created + timedelta(seconds=2 + index),
                plan_id=f"{job_id}:{index}:1",
                planned=planned,
                applied=AppliedCounts(create=planned.create, update=planned.update, delete=0)
                if done
                else None,
                released="within every threshold" if done else None,
                failure="target unreachable: connection refused" if status == "FAILED" else None,
            )
        )
    instance = JobInstance(
        mongo_id=job_id,
        id=job_id,
        request_id=f"hr-feed-{i}",
        definition_id=definition_id,
        definition_name=definition_id.replace("-", " ").title(),
        definition_version=1 + i % 4,
        status=status,
        archived=i % 50 == 0,
        origin="kafka" if i % 3 else "api",
        requested_by="hr-feed",
        created_at=created,
        started_at=created + timedelta(seconds=1),
        ended_at=created + timedelta(seconds=2 + len(names)),
        updated_at=created + timedelta(seconds=2 + len(names)),
        attempt=1,
        sequences=sequences,
        failure="sequence employees failed" if status == "FAILED" else None,
        definition={
            "id": definition_id,
            "name": definition_id,
            "version": 1 + i % 4,
            "sequences": [
                {
                    "name": name,
                    "source": {"type": "csv", "path": f"hr/{name}.csv"},
                    "target": {"type": "mongo", "collection": name},
                    "key": "uid",
                    "mapping": {"uid": "employee_id", "mail": "email", "sn": "last_name"},
                    "delete_missing": True,
                    "thresholds": {"create": {"count": 100}, "delete": {"count": 10}},
                }
                for name in names
            ],
        },
    )
    return instance.to_document()


def chunks(count: int) -> Iterator[list[dict[str, Any]]]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for first in range(0, count, CHUNK):
        yield [job_instance(i, start) for i in range(first, min(count, first + CHUNK))]


@dataclass
class Loaded:
    count: int
    build_seconds: float = 0.0
    insert_seconds: float = 0.0
    index_seconds: float = 0.0


async def load(db: AsyncDatabase[dict[str, Any]], count: int) -> Loaded:
    """insert_many without indexes, then the store's own indexes: on SecantusDB that is ~15x
    quicker than inserting into the fourteen indexes."""
    loaded = Loaded(count)
    for docs in _timed_chunks(count, loaded):
        started = time.perf_counter()
        await db["job_instances"].insert_many(docs, ordered=False)
        loaded.insert_seconds += time.perf_counter() - started
    started = time.perf_counter()
    await JobInstanceStore(db).ensure_indexes()
    loaded.index_seconds = time.perf_counter() - started
    return loaded


def _timed_chunks(count: int, loaded: Loaded) -> Iterator[list[dict[str, Any]]]:
    made = chunks(count)
    while True:
        started = time.perf_counter()
        docs = next(made, None)
        loaded.build_seconds += time.perf_counter() - started
        if docs is None:
            return
        yield docs


@dataclass
class Case:
    """One page: how the API is asked for it, and the same page by raw PyMongo."""

    name: str
    params: dict[str, str | int]
    raw: Callable[[], Awaitable[object]]
    ours_seconds: list[float] = field(default_factory=list)
    raw_seconds: list[float] = field(default_factory=list)


def _cases(db: AsyncDatabase[dict[str, Any]], depth_docs: dict[str, dict[str, Any]]) -> list[Case]:
    collection = db["job_instances"]
    sort = Sort(field="created_at", descending=True)
    projection = {name: 1 for name in SUMMARY_FIELDS}
    cases: list[Case] = []
    for filtered in (False, True):
        statuses = (STATUS_FILTER,) if filtered else ()
        query = JobInstanceQuery(statuses=statuses)
        base = query.mongo_filter()
        status_param: dict[str, str | int] = {"status": STATUS_FILTER} if filtered else {}
        label = f"status={STATUS_FILTER}" if filtered else "no filter"
        deep = depth_docs[label]
        skip = deep["skip"]
        cursor = Cursor.after(sort, deep["doc"])
        ranged = {"$and": [base, keyset_filter(sort, cursor)]}

        def first(base: dict[str, Any] = base) -> Awaitable[object]:
            return _raw_page(collection, base, projection, sort, 0, PAGE_SIZE)

        def offset(base: dict[str, Any] = base, skip: int = skip) -> Awaitable[object]:
            return _raw_page(collection, base, projection, sort, skip, PAGE_SIZE)

        def keyset(
            base: dict[str, Any] = base, ranged: dict[str, Any] = ranged
        ) -> Awaitable[object]:
            return _raw_page(collection, base, projection, sort, 0, PAGE_SIZE + 1, ranged)

        cases += [
            Case(f"first page, {label}", {"page_size": PAGE_SIZE, **status_param}, first),
            Case(
                f"page {skip // PAGE_SIZE + 1} by number, {label}",
                {"page": skip // PAGE_SIZE + 1, "page_size": PAGE_SIZE, **status_param},
                offset,
            ),
            Case(
                f"cursor at {skip:,}, {label}",
                {"cursor": cursor.encode(), "page_size": PAGE_SIZE, **status_param},
                keyset,
            ),
        ]
    return cases


async def _raw_page(
    collection: Any,
    base: dict[str, Any],
    projection: dict[str, int],
    sort: Sort,
    skip: int,
    limit: int,
    ranged: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """What the API asks the database for one page: the total, then the page itself."""
    await collection.count_documents(base)
    found = collection.find(base if ranged is None else ranged, projection).sort(sort.mongo())
    return [doc async for doc in found.skip(skip).limit(limit)]


async def _depth(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each filter: the offset of the deep page and the document just before it."""
    sort = Sort(field="created_at", descending=True)
    found: dict[str, dict[str, Any]] = {}
    for label, statuses in (("no filter", ()), (f"status={STATUS_FILTER}", (STATUS_FILTER,))):
        base = JobInstanceQuery(statuses=statuses).mongo_filter()
        total = await db["job_instances"].count_documents(base)
        skip = max(PAGE_SIZE, int(total * DEPTH) // PAGE_SIZE * PAGE_SIZE)
        before = db["job_instances"].find(base).sort(sort.mongo()).skip(skip - 1).limit(1)
        found[label] = {"skip": skip, "doc": await before.next()}
    return found


async def explain_cursor(db: AsyncDatabase[dict[str, Any]], case: Case) -> str:
    """The cursor query's winning plan and what it examined, in one line."""
    cursor = Cursor.decode(str(case.params["cursor"]))
    statuses = (STATUS_FILTER,) if "status" in case.params else ()
    sort = Sort(field="created_at", descending=True)
    base = JobInstanceQuery(statuses=statuses).mongo_filter()
    answer = await db.command(
        "explain",
        {
            "find": "job_instances",
            "filter": {"$and": [base, keyset_filter(sort, cursor)]},
            "sort": dict(sort.mongo()),
            "limit": PAGE_SIZE + 1,
        },
        verbosity="executionStats",
    )
    stages = []
    plan: dict[str, Any] | None = answer["queryPlanner"]["winningPlan"]
    while plan is not None:
        stage = plan.get("stage", "?")
        if "indexName" in plan:
            stage += f" {plan['indexName']}"
        if "indexBounds" in plan:
            stage += f" bounds {plan['indexBounds']}"
        stages.append(stage)
        inputs = plan.get("inputStages") or [plan.get("inputStage")]
        plan = inputs[0] if inputs and inputs[0] else None
    stats = answer.get("executionStats", {})
    return (
        f"{' ← '.join(stages)}; returned {stats.get('nReturned')}, keys examined "
        f"{stats.get('totalKeysExamined')}, documents examined {stats.get('totalDocsExamined')}"
    )


async def measure(count: int, runs: int) -> tuple[list[str], list[str]]:
    """The lines of one size and its notes (load cost, explain)."""
    lines: list[str] = []
    notes: list[str] = []
    async with system(services=("job-api",)) as stack:
        settings = MongoSettings(uri=stack.mongo_uri)
        client = settings.client()
        db = client[stack.env["MONGO_DATABASE"]]
        try:
            # job-api made the collection's indexes as it started: dropped, so the load
            # inserts without them and builds them once after.
            await db["job_instances"].drop()
            loaded = await load(db, count)
            notes.append(
                f"- {count:,} job instances: built in {loaded.build_seconds:.1f} s, "
                f"insert_many {loaded.insert_seconds:.1f} s "
                f"({count / max(loaded.insert_seconds, 1e-9):,.0f}/s), the 14 indexes built "
                f"after in {loaded.index_seconds:.1f} s"
            )
            cases = _cases(db, await _depth(db))
            async with httpx.AsyncClient(
                base_url=f"{stack.api_url}/api/v1",
                headers={"Authorization": f"Bearer {stack.admin_key}"},
                timeout=600,
            ) as http:
                for case in cases:  # one of each, untimed: both sides warm
                    answer = await http.get("/jobs", params=case.params)
                    assert answer.status_code == 200, answer.text
                    assert len(answer.json()["items"]) == PAGE_SIZE, case.name
                    await case.raw()
                for run in range(runs):
                    for case in cases:
                        # Alternated, so neither side always meets the server warmer.
                        order = (True, False) if run % 2 else (False, True)
                        for ours in order:
                            started = time.perf_counter()
                            if ours:
                                answer = await http.get("/jobs", params=case.params)
                                assert answer.status_code == 200, answer.text
                            else:
                                await case.raw()
                            took = time.perf_counter() - started
                            (case.ours_seconds if ours else case.raw_seconds).append(took)
            for case in cases:
                for name, fraction in (("p50", 0.5), ("p95", 0.95)):
                    lines.append(
                        report_goal(
                            f"list {count:,}: {case.name} {name}",
                            percentile(case.ours_seconds, fraction),
                            percentile(case.raw_seconds, fraction),
                            "raw pymongo",
                            goal=GOAL,
                        )
                    )
            lookups = []
            for _ in range(runs):
                started = time.perf_counter()
                await db["api_keys"].find_one({"key_hash": hash_secret(stack.admin_key)})
                lookups.append(time.perf_counter() - started)
            notes.append(
                f"- {count:,}: the API key lookup every request makes first (one indexed "
                f"`find_one` the raw side does not), raw: p50 "
                f"{percentile(lookups, 0.5) * 1000:.1f} ms"
            )
            for case in cases:
                if "cursor" in case.params:
                    notes.append(
                        f"- explain, {count:,}, {case.name}: {await explain_cursor(db, case)}"
                    )
        finally:
            await client.close()
    return lines, notes


async def main() -> tuple[list[str], list[str]]:
    lines: list[str] = []
    notes: list[str] = []
    for count in sizes():
        more_lines, more_notes = await measure(count, samples())
        lines += more_lines
        notes += more_notes
    return lines, notes


if __name__ == "__main__":
    print("\n".join(asyncio.run(main())[1]))
