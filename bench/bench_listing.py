"""`GET /api/v1/jobs` of a running job-api against raw PyMongo reading the same page on the
same server: p50 and p95 of the first page, a page by number deep in the list (skip) and a page
after a cursor at the same depth (keyset), each without and with a status filter, at each size
of the read model. Both sides' cursor queries are explained: which index bounds them.

Sizes: BENCH_LISTING_SIZES (comma separated, default 10000,100000,1000000; on SecantusDB a
request the server could not hold in memory is not sent, and its line says so); samples per
figure: BENCH_LISTING_SAMPLES (default 5), fewer where a case has used
BENCH_LISTING_CASE_SECONDS (default 45); the seeded read model of each size is kept for
BENCH_LISTING_REUSE_HOURS (default 24), in BENCH_LISTING_MONGO_URI's server (else MONGO_URI's).
Run alone: `KAFKA_BOOTSTRAP_SERVERS=… MONGO_URI=… python -m bench.bench_listing`."""

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from job_api.views import Cursor, JobInstanceQuery, Sort, keyset_filter, window_filters
from provisioning_common.settings import MongoSettings
from provisioning_common.statuses import JobStatus
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.system import listing_mongo_uri, system
from bench.timing import percentile, report_goal

GOAL = 1.2
PAGE_SIZE = 10
# Seconds between two jobs' creation: ~2,300 a day.
SPACING = 37
# insert_many batches, and how many are in flight at once (measured: 4 connections load
# SecantusDB ~1.7x quicker than one; the batch size changes nothing between 1,000 and 20,000).
CHUNK = 2_000
SEED_CONNECTIONS = 4
# Bumped whenever job_instance() changes, so a kept read model of the old shape is reloaded.
SEED_VERSION = 2
SEED_MARKER = "bench_seed"
# SecantusDB's resident memory per document it holds to answer a request, measured at
# 1,000,000 job instances (2026-12-06): the raw first page took the server to 18.3 GB, the
# API's first page (its count) to 20.6 GB, and the raw page by number was killed by the kernel
# at 23.4 GB on the 24 GiB machine. A request is sent only when this, times the headroom (what
# the server keeps of the previous one), fits in the machine's free memory.
HELD_DOCUMENT_BYTES = 20_000
MEMORY_HEADROOM = 1.5
# What the API's cursor page holds: the windows it reads, about a hundred jobs each.
WINDOW_HOLDS = 1_000
# How deep the deep pages are: 90% of the way down the unfiltered (or filtered) list.
DEPTH = 0.9
DEFINITIONS = ("hr-import", "contractors-import", "groups-sync", "directory-sync", "app-accounts")
STATUS_FILTER = JobStatus.FAILED

ABOUT = [
    "`GET /api/v1/jobs` of a running job-api process (HTTP, API key, validation, the response "
    "model) against raw PyMongo asking the same server for the same page with the same "
    "filter, sort (`created_at, _id` descending) and limit. Three pages, each without and with "
    f"`status={STATUS_FILTER}` (5% of the jobs): the first, the page by number {DEPTH:.0%} down "
    "the list, and the page after a cursor at the same depth. The raw pages by number also "
    "count the matches (`count_documents`, the same filter), as the API does for them; the raw "
    "cursor page is the one keyset query `(created_at, _id) < (v, id)` with limit 11, and the "
    "API's cursor page counts nothing (`total` is null on cursor pages). The read model is "
    "loaded with `insert_many` of documents built with `JobInstance`'s constructors (1 to 3 "
    "sequences with plans, a definition snapshot; one job every 37 s up to the seeding "
    "time), then the store's own 13 indexes, in a database kept for the next run. Goal: p50 "
    f"and p95 each ≤ {GOAL}x raw.",
    "",
    "What the API asks the database: the first page and cursor pages of the date sorts are "
    "read range by range down the `archived, [status], created_at, _id` index "
    "(`views.window_filters`): after a cursor, the cursor's own date with `_id` below the "
    "cursor's, then windows of `created_at` bounded on both sides (the first 1 h wide, from the "
    "cursor's date or, on the first page, from the clock, open towards newer dates; each next "
    "4x wider; after eight the rest at once), then the jobs without the date, until the page "
    "is full. On MongoDB a single range with a limit stops at the limit anyway, and each "
    "window is one too. SecantusDB, the server measured here, reads and sorts every "
    "document an index range (or, for a filter holding an `$or`, the whole collection) holds "
    "before it applies the limit: the raw keyset query reads the collection, a window reads "
    "the ~100 jobs of its hour. What no query shape removes there is the count of the pages "
    "by number (~0.3 ms per matching document: it decodes each one) and the skip of the deep "
    "page by number: those pages cost the server the same on both sides.",
    "",
    "Sizes: `BENCH_LISTING_SIZES` (default `10000,100000,1000000`), samples: "
    "`BENCH_LISTING_SAMPLES` (default 5; p95 of 5 is their worst), cut short once a case has "
    "spent `BENCH_LISTING_CASE_SECONDS` (default 45; at least one sample each side), so at "
    "100,000 the unfiltered pages by number, which count (and skip) ~100,000 documents per "
    "request on both sides, have one sample, and the raw cursor pages (a collection scan) two. "
    "The loaded read models are kept (database `bench_listing_<size>`, with a marker) in a "
    "SecantusDB of their own that `make bench` starts on port 27020 (`.infra/bench-listing`; "
    "in the server the other benchmarks write to, their weight slowed those writes), and "
    "reused by the next run within `BENCH_LISTING_REUSE_HOURS` (default 24: the first page "
    "walks down from the clock, so data seeded long ago makes its first window read more). "
    "Loading 1,000,000 on the quiet 2-core machine (2026-12-06) took about 15 minutes: ~4 of "
    "building and `insert_many`, ~11 of SecantusDB building the 13 indexes (each a pass "
    "decoding every document).",
    "",
    "At 1,000,000 job instances SecantusDB cannot answer every page on a 24 GiB machine: it "
    "decodes every document of the index range (or, for the raw keyset query's `$or`, of the "
    "collection) into memory before it counts, sorts or skips, about 20 KB of its memory per "
    "job instance. Measured on 2026-12-06: the raw unfiltered first page took the server to "
    "18.3 GB resident, the API's (its count of the list) to 20.6 GB, and the raw page by "
    "number was killed by the kernel at 23.4 GB. So, on SecantusDB (its `buildInfo` says "
    "so), a request whose side would make the server hold more than the machine has free, "
    "with half again for what it keeps of the previous request, is not sent, and its line "
    "says `not measured` and why: at 1,000,000 the unfiltered first page and page by number "
    "on both sides and the raw keyset pages. What is measured there: the API's cursor pages "
    "(its windows read ~100 jobs each, whatever the size) and both sides' `status=FAILED` "
    "pages (50,000 jobs). Against a real mongod (`MONGO_URI`) every request is sent: each "
    "page is index ranges that stop at the limit, and a count is a scan of index keys.",
]


def sizes() -> list[int]:
    default = "10000,100000,1000000"
    return [int(s) for s in os.environ.get("BENCH_LISTING_SIZES", default).split(",") if s]


def _available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


async def holds_in_memory(client: AsyncMongoClient[dict[str, Any]]) -> bool:
    """Whether the server is SecantusDB, which decodes every document of an index range (or
    of the collection) into memory before it counts, sorts or skips them."""
    info = await client.admin.command("buildInfo")
    return "secantusVersion" in info


def unaffordable(holds: int, available: int | None) -> str | None:
    """Why a request that makes SecantusDB hold `holds` documents is not sent, or None: it
    would need more than the machine has free (with room for what the server keeps of the
    previous request), and the kernel would kill the server."""
    need = holds * HELD_DOCUMENT_BYTES * MEMORY_HEADROOM
    if available is None or need <= available:
        return None
    return (
        f"SecantusDB would hold {holds:,} documents in memory "
        f"(~{holds * HELD_DOCUMENT_BYTES / 2**30:.0f} GiB, more with what it keeps of the "
        f"previous request), {available / 2**30:.0f} GiB free"
    )


def server_peak_mib() -> float | None:
    """The MongoDB server's peak resident memory so far (`VmHWM`), when `make bench` started
    the server itself (BENCH_LISTING_MONGO_PIDFILE): SecantusDB holds the documents it sorts."""
    pidfile = os.environ.get("BENCH_LISTING_MONGO_PIDFILE")
    if not pidfile:
        return None
    try:
        pid = Path(pidfile).read_text().strip()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def samples() -> int:
    return int(os.environ.get("BENCH_LISTING_SAMPLES", "5"))


def case_seconds() -> float:
    return float(os.environ.get("BENCH_LISTING_CASE_SECONDS", "45"))


def reuse_hours() -> float:
    return float(os.environ.get("BENCH_LISTING_REUSE_HOURS", "24"))


def job_id_of(i: int) -> str:
    return f"{i:08x}-0000-5000-8000-{i:012x}"


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
    created = start + timedelta(seconds=SPACING * i)
    job_id = job_id_of(i)
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


@dataclass
class Seed:
    """The seeded read model of one size: its database, when its newest job was created, and
    what loading it cost (nothing when an earlier run's data was reused)."""

    count: int
    database: str
    newest: datetime
    reused: bool = False
    build_seconds: float = 0.0
    insert_seconds: float = 0.0
    index_seconds: float = 0.0

    @property
    def first_created(self) -> datetime:
        return self.newest - timedelta(seconds=SPACING * (self.count - 1))

    def job(self, i: int) -> dict[str, Any]:
        """Job i's sort key as the read model holds it: its creation date and id."""
        return {
            "_id": job_id_of(i),
            "created_at": self.first_created + timedelta(seconds=SPACING * i),
        }


async def seed(client: AsyncMongoClient[dict[str, Any]], count: int) -> Seed:
    """The read model of `count` job instances in a database of its own, kept between runs: an
    earlier run's is reused when its marker names the same count and data version, it was
    seeded less than BENCH_LISTING_REUSE_HOURS ago, and the collection holds that count."""
    db = client[f"bench_listing_{count}"]
    marker = await db[SEED_MARKER].find_one({"_id": "job_instances"})
    now = datetime.now(UTC)
    if (
        marker is not None
        and marker.get("count") == count
        and marker.get("version") == SEED_VERSION
        and now - marker["newest"].replace(tzinfo=UTC) < timedelta(hours=reuse_hours())
        and await db["job_instances"].estimated_document_count() == count
    ):
        return Seed(count, db.name, marker["newest"].replace(tzinfo=UTC), reused=True)
    await client.drop_database(db.name)
    # The newest job was created now, in whole milliseconds as BSON keeps it: jobs arrive all
    # the time on a system this size, and the first page walks down from the clock.
    loaded = Seed(count, db.name, now.replace(microsecond=now.microsecond // 1000 * 1000))
    await _insert(db.name, loaded)
    started = time.perf_counter()
    await JobInstanceStore(db).ensure_indexes()
    loaded.index_seconds = time.perf_counter() - started
    await db[SEED_MARKER].insert_one(
        {"_id": "job_instances", "count": count, "version": SEED_VERSION, "newest": loaded.newest}
    )
    return loaded


async def _insert(database: str, loaded: Seed) -> None:
    """insert_many of CHUNK documents on SEED_CONNECTIONS connections at once, into the
    collection with no index but `_id` (the others are built once, after: on SecantusDB ~15x
    quicker than inserting into them): the server stores one batch while the next is built
    and sent."""
    start = loaded.first_created
    batches: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(SEED_CONNECTIONS)
    clients = [MongoSettings(uri=listing_mongo_uri()).client() for _ in range(SEED_CONNECTIONS)]

    async def insert(client: AsyncMongoClient[dict[str, Any]]) -> None:
        while (docs := await batches.get()) is not None:
            await client[database]["job_instances"].insert_many(docs, ordered=False)

    started = time.perf_counter()
    workers = [asyncio.create_task(insert(client)) for client in clients]
    try:
        for first in range(0, loaded.count, CHUNK):
            built = time.perf_counter()
            docs = [job_instance(i, start) for i in range(first, min(loaded.count, first + CHUNK))]
            loaded.build_seconds += time.perf_counter() - built
            await batches.put(docs)
        for _ in workers:
            await batches.put(None)
        await asyncio.gather(*workers)
    finally:
        for client in clients:
            await client.close()
    loaded.insert_seconds = time.perf_counter() - started - loaded.build_seconds


@dataclass
class Case:
    """One page: how the API is asked for it, and the same page by raw PyMongo."""

    name: str
    params: dict[str, str | int]
    raw: Callable[[], Awaitable[object]]
    # How many documents SecantusDB decodes and holds at once to answer each side (it reads
    # an index range or the collection whole, then counts, sorts and skips in memory).
    ours_holds: int = 0
    raw_holds: int = 0
    ours_seconds: list[float] = field(default_factory=list)
    raw_seconds: list[float] = field(default_factory=list)
    # Why a side was not run (the server could not hold what it asks in memory), per side.
    not_run: dict[bool, str] = field(default_factory=dict)


def _visible(i: int, filtered: bool) -> bool:
    """Whether job i is on the list: not archived (FAILED ones never are), and FAILED when
    filtered."""
    return _status(i) == STATUS_FILTER if filtered else i % 50 != 0


def _depth(loaded: Seed, filtered: bool) -> tuple[int, dict[str, Any], int]:
    """The offset of the deep page, the job just before it, newest first, and how many jobs
    the list holds, from the seed's own arithmetic (asking the server would sort the whole list
    once more)."""
    listed = [i for i in range(loaded.count - 1, -1, -1) if _visible(i, filtered)]
    skip = max(PAGE_SIZE, int(len(listed) * DEPTH) // PAGE_SIZE * PAGE_SIZE)
    return skip, loaded.job(listed[skip - 1]), len(listed)


def _cases(db: AsyncDatabase[dict[str, Any]], loaded: Seed) -> list[Case]:
    collection = db["job_instances"]
    sort = Sort(field="created_at", descending=True)
    projection = {name: 1 for name in SUMMARY_FIELDS}
    cases: list[Case] = []
    for filtered in (False, True):
        statuses = (STATUS_FILTER,) if filtered else ()
        base = JobInstanceQuery(statuses=statuses).mongo_filter()
        status_param: dict[str, str | int] = {"status": STATUS_FILTER} if filtered else {}
        label = f"status={STATUS_FILTER}" if filtered else "no filter"
        skip, before, listed = _depth(loaded, filtered)
        cursor = Cursor.after(sort, before)
        ranged = {"$and": [base, keyset_filter(sort, cursor)]}

        def first(base: dict[str, Any] = base) -> Awaitable[object]:
            return _raw_page(collection, base, projection, sort, skip=0, counted=True)

        def offset(base: dict[str, Any] = base, skip: int = skip) -> Awaitable[object]:
            return _raw_page(collection, base, projection, sort, skip=skip, counted=True)

        def keyset(ranged: dict[str, Any] = ranged) -> Awaitable[object]:
            return _raw_page(collection, ranged, projection, sort, skip=0, counted=False)

        # The list's index range (`archived`, and `status` when filtered) is what a count or a
        # sorted page decodes; the raw keyset query's `$or` reads the whole collection; the
        # API's cursor page reads its windows (about a hundred jobs each).
        cases += [
            Case(
                f"first page, {label}",
                {"page_size": PAGE_SIZE, **status_param},
                first,
                ours_holds=listed,
                raw_holds=listed,
            ),
            Case(
                f"page {skip // PAGE_SIZE + 1} by number, {label}",
                {"page": skip // PAGE_SIZE + 1, "page_size": PAGE_SIZE, **status_param},
                offset,
                ours_holds=listed,
                raw_holds=listed,
            ),
            Case(
                f"cursor at {skip:,}, {label}",
                {"cursor": cursor.encode(), "page_size": PAGE_SIZE, **status_param},
                keyset,
                ours_holds=WINDOW_HOLDS,
                raw_holds=loaded.count,
            ),
        ]
    return cases


async def _raw_page(
    collection: Any,
    query: dict[str, Any],
    projection: dict[str, int],
    sort: Sort,
    *,
    skip: int,
    counted: bool,
) -> list[dict[str, Any]]:
    """One page as a client would ask for it: the total first for a page by number, then the
    page with one more item than asked (whether a next page follows)."""
    if counted:
        await collection.count_documents(query)
    found = collection.find(query, projection).sort(sort.mongo())
    return [doc async for doc in found.skip(skip).limit(PAGE_SIZE + 1)]


async def _explain(db: AsyncDatabase[dict[str, Any]], query: dict[str, Any], run: bool) -> str:
    """A query's winning plan and, when `run`, what it examined, in one line."""
    sort = Sort(field="created_at", descending=True)
    answer = await db.command(
        "explain",
        {
            "find": "job_instances",
            "filter": query,
            "sort": dict(sort.mongo()),
            "limit": PAGE_SIZE + 1,
        },
        verbosity="executionStats" if run else "queryPlanner",
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
    line = " ← ".join(stages)
    if run:
        stats = answer.get("executionStats", {})
        line += (
            f"; keys examined {stats.get('totalKeysExamined')}, documents examined "
            f"{stats.get('totalDocsExamined')}"
        )
    return line


async def explain_cursor(db: AsyncDatabase[dict[str, Any]], loaded: Seed, case: Case) -> list[str]:
    """Both sides' cursor queries: the raw keyset query, and the API's ranges down to the
    first that fills the page. The raw one is only planned above 10,000 (run, it reads the
    collection)."""
    cursor = Cursor.decode(str(case.params["cursor"]))
    statuses = (STATUS_FILTER,) if "status" in case.params else ()
    sort = Sort(field="created_at", descending=True)
    query = JobInstanceQuery(statuses=statuses, sort=sort, page_size=PAGE_SIZE, cursor=cursor)
    base = query.mongo_filter()
    raw = {"$and": [base, keyset_filter(sort, cursor)]}
    lines = [f"raw `{_shown(raw)}`: {await _explain(db, raw, run=loaded.count <= 10_000)}"]
    ranges = window_filters(query, datetime.now(UTC))
    assert ranges is not None
    found = 0
    for ranged in ranges:
        lines.append(f"ours `{_shown(ranged)}`: {await _explain(db, ranged, run=True)}")
        found += await db["job_instances"].count_documents(ranged)
        if found > PAGE_SIZE:
            break
    return lines


def _shown(query: dict[str, Any]) -> str:
    """A filter as one line of JSON, dates in ISO 8601."""

    def date(value: Any) -> str:
        if isinstance(value, datetime):
            return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return str(value)

    return json.dumps(query, default=date)


async def _timed(case: Case, http: httpx.AsyncClient, ours: bool) -> None:
    if ours in case.not_run:
        return
    started = time.perf_counter()
    if ours:
        answer = await http.get("/jobs", params=case.params)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["items"]) == PAGE_SIZE, case.name
    else:
        await case.raw()
    took = time.perf_counter() - started
    (case.ours_seconds if ours else case.raw_seconds).append(took)


def _line(name: str, case: Case, fraction: float) -> str:
    """The figure's line: ours against raw with the goal, or what of it could not be run."""
    if not case.not_run:
        return report_goal(
            name,
            percentile(case.ours_seconds, fraction),
            percentile(case.raw_seconds, fraction),
            "raw pymongo",
            goal=GOAL,
        )
    ours = (
        f"ours {percentile(case.ours_seconds, fraction) * 1000:9.1f} ms"
        if True not in case.not_run
        else "ours not run"
    )
    raw = (
        f"raw pymongo {percentile(case.raw_seconds, fraction) * 1000:9.1f} ms"
        if False not in case.not_run
        else "raw pymongo not run"
    )
    reason = case.not_run.get(False) or case.not_run[True]
    line = f"{name:<44} {ours}   {raw}   goal ≤ {GOAL:g} (not measured: {reason})"
    print(line, flush=True)
    return line


async def measure(count: int, runs: int) -> tuple[list[str], list[str]]:
    """The lines of one size and its notes (load cost, explain)."""
    lines: list[str] = []
    notes: list[str] = []
    client = MongoSettings(uri=listing_mongo_uri()).client()
    try:
        started = time.perf_counter()
        loaded = await seed(client, count)
        if loaded.reused:
            notes.append(
                f"- {count:,} job instances: reused from an earlier run (database "
                f"`{loaded.database}`, newest job {loaded.newest:%Y-%m-%d %H:%M} UTC), checked "
                f"in {time.perf_counter() - started:.1f} s"
            )
        else:
            notes.append(
                f"- {count:,} job instances: built in {loaded.build_seconds:.1f} s, "
                f"insert_many on {SEED_CONNECTIONS} connections {loaded.insert_seconds:.1f} s "
                f"({count / max(loaded.insert_seconds, 1e-9):,.0f}/s), the 13 indexes built "
                f"after in {loaded.index_seconds:.1f} s "
                f"({count / max(loaded.index_seconds, 1e-9):,.0f} documents/s); kept for "
                "the next run"
            )
    finally:
        await client.close()
    async with system(
        services=("job-api",),
        extra_env={"MONGO_DATABASE": loaded.database},
        keep_database=True,
        mongo=listing_mongo_uri(),
    ) as stack:
        client = MongoSettings(uri=stack.mongo_uri).client()
        db = client[loaded.database]
        try:
            cases = _cases(db, loaded)
            if await holds_in_memory(client):
                available = _available_bytes()
                for case in cases:
                    for ours, holds in ((True, case.ours_holds), (False, case.raw_holds)):
                        if (reason := unaffordable(holds, available)) is not None:
                            case.not_run[ours] = reason
            async with httpx.AsyncClient(
                base_url=f"{stack.api_url}/api/v1",
                headers={"Authorization": f"Bearer {stack.admin_key}"},
                timeout=1800,
            ) as http:
                for case in cases:
                    if count <= 10_000:  # one of each, untimed: both sides warm
                        await _timed(case, http, ours=True)
                        await _timed(case, http, ours=False)
                        case.ours_seconds.clear()
                        case.raw_seconds.clear()
                for run in range(runs):
                    for case in cases:
                        if run and sum(case.ours_seconds + case.raw_seconds) > case_seconds():
                            continue
                        # Alternated, so neither side always meets the server warmer.
                        for ours in (True, False) if run % 2 else (False, True):
                            await _timed(case, http, ours)
            for case in cases:
                for name, fraction in (("p50", 0.5), ("p95", 0.95)):
                    lines.append(_line(f"list {count:,}: {case.name} {name}", case, fraction))
            notes.append(
                f"- {count:,}: samples per side "
                + ", ".join(f"{case.name} {len(case.ours_seconds)}" for case in cases)
            )
            for case in cases:
                for ours, reason in sorted(case.not_run.items(), reverse=True):
                    side = "ours" if ours else "raw"
                    notes.append(f"- {count:,}: {case.name}, {side} not run: {reason}")
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
            peak = server_peak_mib()
            if peak is not None:
                notes.append(
                    f"- {count:,}: the MongoDB server's peak resident memory so far {peak:,.0f} MiB"
                )
            for case in cases:
                if "cursor" in case.params:
                    for line in await explain_cursor(db, loaded, case):
                        notes.append(f"- explain, {count:,}, {case.name}, {line}")
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
