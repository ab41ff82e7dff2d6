"""Read-model queries of job-api: job instances, planned changes, the audit trail; paged."""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from provisioning_common.definitions import ChangeAction
from provisioning_common.plan_chunks import (
    LEGACY_PLAN_CHANGES,
    PLAN_CHUNKS,
    PLANS,
    ActionRun,
    read_changes,
)
from provisioning_common.statuses import JobStatus
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from job_api.adapters.audit import AUDIT
from job_api.domain.job_instance import SUMMARY_FIELDS, JobInstance, JobInstanceSummary

T = TypeVar("T")

JOB_INSTANCES = "job_instances"
# Written by the sequence runner beside a revert's plan.
REVERT_CONFLICTS = "revert_conflicts"

SortField = Literal["created_at", "started_at", "ended_at", "status", "definition_id"]
SORT_FIELDS: tuple[SortField, ...] = (
    "created_at",
    "started_at",
    "ended_at",
    "status",
    "definition_id",
)
Archived = Literal["false", "true", "any"]

# What a listing returns of each job instance: the summary's fields, enough for a table row
# and its sequence summary; the definition snapshot stays in the database.
_LIST_FIELDS = {name: 1 for name in SUMMARY_FIELDS}


_MS = timedelta(milliseconds=1)


def _floor_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _exclusive_from(moment: datetime) -> datetime | None:
    """The millisecond before the first whole one at or after `moment`; None before year 1."""
    floor = _floor_ms(moment)
    try:
        return floor if floor != moment else floor - _MS
    except OverflowError:
        return None


def _exclusive_to(moment: datetime) -> datetime | None:
    """The millisecond after the last whole one at or before `moment`; None after year 9999."""
    try:
        return _floor_ms(moment) + _MS
    except OverflowError:
        return None


class InvalidCursorError(ValueError):
    pass


@dataclass(frozen=True)
class Sort:
    field: SortField
    descending: bool

    @classmethod
    def parse(cls, value: str) -> "Sort":
        descending = value.startswith("-")
        name = value.removeprefix("-")
        for known in SORT_FIELDS:
            if name == known:
                return cls(field=known, descending=descending)
        raise ValueError(
            f"sort: {value!r} is not a sort; use one of {', '.join(SORT_FIELDS)}, "
            "with a leading '-' for descending"
        )

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field

    def mongo(self) -> list[tuple[str, int]]:
        # _id breaks ties in the same direction, so (field, _id) is a total order an index serves.
        direction = DESCENDING if self.descending else ASCENDING
        return [(self.field, direction), ("_id", direction)]


@dataclass(frozen=True)
class Cursor:
    """The position after one item: its sort value and id, under one sort."""

    sort: str
    value: datetime | str | None
    id: str

    def encode(self) -> str:
        if isinstance(self.value, datetime):
            tagged: dict[str, Any] = {"t": "d", "v": self.value.astimezone(UTC).isoformat()}
        elif isinstance(self.value, str):
            tagged = {"t": "s", "v": self.value}
        else:
            tagged = {"t": "n"}
        raw = json.dumps({"s": self.sort, "id": self.id, **tagged}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            padded = token + "=" * (-len(token) % 4)
            doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
            kind = doc["t"]
            value: datetime | str | None
            if kind == "d":
                # In UTC, as every stored date (one outside years 1 to 9999 there is refused).
                moment = datetime.fromisoformat(doc["v"])
                value = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            elif kind == "s":
                value = str(doc["v"])
            elif kind == "n":
                value = None
            else:
                raise ValueError(kind)
            return cls(sort=str(doc["s"]), value=value, id=str(doc["id"]))
        except (
            binascii.Error,
            UnicodeDecodeError,
            ValueError,
            KeyError,
            TypeError,
            OverflowError,  # a date outside years 1 to 9999 once in UTC
            RecursionError,  # JSON nested deeper than the parser goes
        ) as error:
            raise InvalidCursorError(
                "cursor: not a cursor this API gave out; pass next_cursor from a previous page "
                "unchanged, or start again without it"
            ) from error

    @classmethod
    def after(cls, sort: Sort, doc: dict[str, Any]) -> "Cursor":
        return cls(sort=str(sort), value=doc.get(sort.field), id=str(doc["_id"]))


def keyset_filter(sort: Sort, cursor: Cursor) -> dict[str, Any]:
    """Everything strictly after the cursor in (field, _id) order: a range scan, never a skip.

    MongoDB orders null (and missing) below every value, so ascending lists them first and
    descending last; a comparison such as $gt never matches null, hence the explicit branches.
    """
    f, v, i = sort.field, cursor.value, cursor.id
    if not sort.descending:
        if v is None:
            return {"$or": [{f: None, "_id": {"$gt": i}}, {f: {"$ne": None}}]}
        return {"$or": [{f: v, "_id": {"$gt": i}}, {f: {"$gt": v}}]}
    if v is None:
        return {f: None, "_id": {"$lt": i}}
    return {"$or": [{f: v, "_id": {"$lt": i}}, {f: {"$lt": v}}, {f: None}]}


@dataclass(frozen=True)
class JobInstanceQuery:
    statuses: tuple[JobStatus, ...] = ()
    definition_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    archived: Archived = "false"
    sort: Sort = Sort(field="created_at", descending=True)
    page: int = 1
    page_size: int = 10
    cursor: Cursor | None = None

    def mongo_filter(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.archived != "any":
            query["archived"] = self.archived == "true"
        if self.statuses:
            query["status"] = {"$in": [str(s) for s in self.statuses]}
        if self.definition_id is not None:
            query["definition_id"] = self.definition_id
        created: dict[str, datetime] = {}
        # Inclusive bounds as exclusive ones a millisecond (BSON's date precision) outside:
        # the same documents on MongoDB, and SecantusDB drops the documents equal to an
        # inclusive bound when it scans a compound index against its key's direction. At the
        # ends of the calendar there is nothing outside: no bound.
        after = None if self.created_from is None else _exclusive_from(self.created_from)
        before = None if self.created_to is None else _exclusive_to(self.created_to)
        if after is not None:
            created["$gt"] = after
        if before is not None:
            created["$lt"] = before
        if created:
            query["created_at"] = created
        return query


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int | None
    page_size: int
    total: int
    next_cursor: str | None

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size)


@dataclass(frozen=True)
class JobInstancePage:
    items: list[JobInstanceSummary]
    page: int | None
    page_size: int
    # None on a cursor page: counting every match is the cost a cursor avoids.
    total: int | None
    next_cursor: str | None

    @property
    def pages(self) -> int | None:
        return None if self.total is None else math.ceil(self.total / self.page_size)


# The walk down a date index (see `window_filters`): the first window below its anchor, how
# much wider each next one is, and how many windows before the rest is asked for at once.
FIRST_WINDOW = timedelta(hours=1)
WINDOW_GROWTH = 4
MAX_WINDOWS = 8
_DATE_SORTS = frozenset({"created_at", "started_at", "ended_at"})


def _older(moment: datetime, width: timedelta) -> datetime | None:
    try:
        return moment - width
    except OverflowError:
        return None


def _newer(moment: datetime, width: timedelta) -> datetime | None:
    try:
        return moment + width
    except OverflowError:
        return None


def window_filters(query: JobInstanceQuery, now: datetime) -> list[dict[str, Any]] | None:
    """The page's filter cut into ranges of the sort field, each one index range; None when
    the listing is not a date sort over equality filters (then one query asks for the page).

    MongoDB answers `sort + limit` by walking the index and stopping at the limit, so one
    range query is enough there; SecantusDB (the test server) reads and sorts every document
    a filter's index range holds before it applies the limit, so `created_at < X` costs the
    whole rest of the list. Bounded on both sides, a range costs what it holds: the caller
    asks the ranges in order, one after the other, until the page is full. On MongoDB each is
    still an index range with the limit. The ranges, in the sort's order:

    - after a cursor, the cursor's own sort value with `_id` past the cursor's (the ties);
    - windows of the sort field, the first `FIRST_WINDOW` wide from the cursor's value (the
      first page: from `now`, open towards the newer end), each next `WINDOW_GROWTH` times
      wider, the last one open at the far end;
    - the documents without the field (null), which MongoDB orders last descending.

    Every bound is exclusive: SecantusDB drops the documents equal to an inclusive bound when
    it scans a compound index against its key's direction (`mongo_filter`); BSON dates are
    whole milliseconds, so `> lo - 1 ms` is `>= lo`. Only equality filters may stand beside the
    range (one status is an equality), so each range has a `archived, [filter], field, _id`
    index and SecantusDB's planner takes it.
    """
    field = query.sort.field
    if field not in _DATE_SORTS or query.archived == "any":
        return None
    equal: dict[str, Any] = {}
    outer: dict[str, datetime] = {}
    for name, condition in query.mongo_filter().items():
        if name == field:
            outer = condition
        elif isinstance(condition, dict):
            values = condition.get("$in")
            if list(condition) != ["$in"] or not isinstance(values, list) or len(values) != 1:
                return None  # several statuses, or a range on another date
            equal[name] = values[0]
        else:
            equal[name] = condition
    if len(equal) > 2:
        return None  # archived, a status and a definition: no index has all three before a date
    cursor = query.cursor
    if cursor is not None and not isinstance(cursor.value, datetime | None):
        return None
    if query.sort.descending:
        return _descending_windows(equal, field, outer, cursor, now)
    if cursor is None or cursor.value is None:
        return None  # the oldest end has no anchor: one query (nulls first, then dates)
    return _ascending_windows(equal, field, outer, cursor)


def _descending_windows(
    equal: dict[str, Any],
    field: str,
    outer: dict[str, datetime],
    cursor: Cursor | None,
    now: datetime,
) -> list[dict[str, Any]]:
    if cursor is not None and cursor.value is None:
        return [{**equal, field: None, "_id": {"$lt": cursor.id}}]
    floor = outer.get("$gt")
    upper = outer.get("$lt")
    anchor = now if upper is None else min(now, upper)
    ranges: list[dict[str, Any]] = []
    if cursor is not None:
        assert isinstance(cursor.value, datetime)
        if _inside(cursor.value, outer):
            ranges.append({**equal, field: cursor.value, "_id": {"$lt": cursor.id}})
        upper = anchor = cursor.value if upper is None else min(cursor.value, upper)
    width = FIRST_WINDOW
    for count in range(MAX_WINDOWS + 1):
        # Exclusive, a millisecond below the window's lowest date.
        below = _older(anchor, width + _MS) if count < MAX_WINDOWS else None
        last = below is None or (floor is not None and below <= floor)
        bounds: dict[str, datetime] = {} if upper is None else {"$lt": upper}
        if not last:
            assert below is not None
            bounds["$gt"] = below
        elif floor is not None:
            bounds["$gt"] = floor
        ranges.append({**equal, field: bounds})
        if last:
            break
        assert below is not None
        upper = anchor = below + _MS
        width *= WINDOW_GROWTH
    if not outer:
        # A date range in the filter never matches null.
        ranges.append({**equal, field: None})
    return ranges


def _ascending_windows(
    equal: dict[str, Any], field: str, outer: dict[str, datetime], cursor: Cursor
) -> list[dict[str, Any]]:
    assert isinstance(cursor.value, datetime)
    ranges: list[dict[str, Any]] = []
    if _inside(cursor.value, outer):
        ranges.append({**equal, field: cursor.value, "_id": {"$gt": cursor.id}})
    ceiling = outer.get("$lt")
    floor = outer.get("$gt")
    lower = anchor = cursor.value if floor is None else max(cursor.value, floor)
    width = FIRST_WINDOW
    for count in range(MAX_WINDOWS + 1):
        # Exclusive, a millisecond above the window's highest date.
        above = _newer(anchor, width + _MS) if count < MAX_WINDOWS else None
        last = above is None or (ceiling is not None and above >= ceiling)
        bounds: dict[str, datetime] = {"$gt": lower}
        if not last:
            assert above is not None
            bounds["$lt"] = above
        elif ceiling is not None:
            bounds["$lt"] = ceiling
        ranges.append({**equal, field: bounds})
        if last:
            break
        assert above is not None
        lower = anchor = above - _MS
        width *= WINDOW_GROWTH
    return ranges


def _inside(moment: datetime, outer: dict[str, datetime]) -> bool:
    return ("$gt" not in outer or outer["$gt"] < moment) and (
        "$lt" not in outer or moment < outer["$lt"]
    )


async def list_job_instances(
    db: AsyncDatabase[dict[str, Any]], query: JobInstanceQuery, now: datetime | None = None
) -> JobInstancePage:
    """A page by number (skip/limit, for the console; with the total) or after a cursor
    (keyset, any depth; no total). The first page and cursor pages of the date sorts are read
    range by range down the index (`window_filters`)."""
    collection = db[JOB_INSTANCES]
    base = query.mongo_filter()
    if query.cursor is not None and query.cursor.sort != str(query.sort):
        raise InvalidCursorError(
            f"cursor: it was given out for sort={query.cursor.sort}, not sort={query.sort}; "
            "keep the sort while following next_cursor"
        )
    total = None if query.cursor is not None else await collection.count_documents(base)
    skip = (query.page - 1) * query.page_size if query.cursor is None else 0
    # One more than a page tells whether another page follows without counting.
    wanted = query.page_size + 1
    ranges = window_filters(query, now or datetime.now(UTC)) if skip == 0 else None
    docs: list[dict[str, Any]] = []
    if ranges is not None:
        for ranged in ranges:
            found = collection.find(ranged, _LIST_FIELDS).sort(query.sort.mongo())
            docs += [doc async for doc in found.limit(wanted - len(docs))]
            if len(docs) >= wanted:
                break
    elif query.cursor is not None:
        ranged = (
            {"$and": [base, keyset_filter(query.sort, query.cursor)]}
            if base
            else (keyset_filter(query.sort, query.cursor))
        )
        found = collection.find(ranged, _LIST_FIELDS).sort(query.sort.mongo())
        docs = [doc async for doc in found.limit(wanted)]
    else:
        found = collection.find(base, _LIST_FIELDS).sort(query.sort.mongo())
        docs = [doc async for doc in found.skip(skip).limit(wanted)]
    more = len(docs) > query.page_size
    docs = docs[: query.page_size]
    next_cursor = Cursor.after(query.sort, docs[-1]).encode() if more and docs else None
    return JobInstancePage(
        items=[JobInstanceSummary.model_validate(doc) for doc in docs],
        page=None if query.cursor is not None else query.page,
        page_size=query.page_size,
        total=total,
        next_cursor=next_cursor,
    )


async def get_job_instance(db: AsyncDatabase[dict[str, Any]], job_id: str) -> JobInstance | None:
    found = await db[JOB_INSTANCES].find_one({"_id": job_id})
    return None if found is None else JobInstance.from_document(found)


async def list_planned_changes(
    db: AsyncDatabase[dict[str, Any]],
    plan_id: str,
    action: ChangeAction | None,
    page: int,
    page_size: int,
) -> Page[dict[str, Any]]:
    """One page of a stored plan in plan order: the plan document says how many changes of
    each action it holds, so the page is one or two chunks read by `_id`, however deep."""
    plan = await db[PLANS].find_one({"_id": plan_id}, {"chunk_size": 1, "actions": 1})
    if plan is None:
        # Not stored (yet): the plan document is written after all its changes.
        return Page(items=[], page=page, page_size=page_size, total=0, next_cursor=None)
    if "chunk_size" not in plan:
        return await _list_legacy_planned_changes(db, plan_id, action, page, page_size)
    runs = [ActionRun.from_document(run) for run in plan["actions"]]
    if action is not None:
        # Disables are an action of their own here, as in the counts and the console (they
        # are held against the delete threshold, but an operator filters them apart).
        runs = [run for run in runs if run.action == action]
    total = sum(run.count for run in runs)
    first = (page - 1) * page_size
    docs = await read_changes(
        db[PLAN_CHUNKS], plan_id, runs, first, min(first + page_size, total), plan["chunk_size"]
    )
    return Page(items=docs, page=page, page_size=page_size, total=total, next_cursor=None)


async def _list_legacy_planned_changes(
    db: AsyncDatabase[dict[str, Any]],
    plan_id: str,
    action: ChangeAction | None,
    page: int,
    page_size: int,
) -> Page[dict[str, Any]]:
    """A plan stored one document per change, before chunks: paged as it was then."""
    query: dict[str, Any] = {"plan_id": plan_id}
    if action is not None:
        query["action"] = action
    changes = db[LEGACY_PLAN_CHANGES]
    total = await changes.count_documents(query)
    skip = (page - 1) * page_size
    found = changes.find(query, {"_id": 0}).sort([("seq", ASCENDING)]).skip(skip).limit(page_size)
    docs = [doc async for doc in found]
    return Page(items=docs, page=page, page_size=page_size, total=total, next_cursor=None)


async def list_revert_conflicts(
    db: AsyncDatabase[dict[str, Any]], plan_id: str, page: int, page_size: int
) -> Page[dict[str, Any]]:
    """One page of a revert plan's conflicts in the reverted plan's order."""
    conflicts = db[REVERT_CONFLICTS]
    query = {"plan_id": plan_id}
    total = await conflicts.count_documents(query)
    skip = (page - 1) * page_size
    found = conflicts.find(query, {"_id": 0}).sort([("seq", ASCENDING)]).skip(skip)
    docs = [doc async for doc in found.limit(page_size)]
    return Page(items=docs, page=page, page_size=page_size, total=total, next_cursor=None)


@dataclass(frozen=True)
class AuditEntryQuery:
    """Which audit entries to list: each filter given narrows the trail; dates in UTC."""

    job_id: str | None = None
    actor: str | None = None
    action: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None

    def mongo_filter(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.job_id is not None:
            query["job_id"] = self.job_id
        if self.actor is not None:
            query["actor"] = self.actor
        if self.action is not None:
            query["action"] = self.action
        at: dict[str, datetime] = {}
        # Exclusive bounds a millisecond outside, as for job instances (see mongo_filter above).
        after = None if self.at_from is None else _exclusive_from(self.at_from)
        before = None if self.at_to is None else _exclusive_to(self.at_to)
        if after is not None:
            at["$gt"] = after
        if before is not None:
            at["$lt"] = before
        if at:
            query["at"] = at
        return query


async def list_audit_entries(
    db: AsyncDatabase[dict[str, Any]],
    page: int,
    page_size: int,
    query: AuditEntryQuery | None = None,
) -> Page[dict[str, Any]]:
    """Newest first."""
    entries = db[AUDIT]
    mongo_query = (query or AuditEntryQuery()).mongo_filter()
    total = await entries.count_documents(mongo_query)
    found = (
        entries.find(mongo_query)
        .sort([("at", DESCENDING), ("_id", DESCENDING)])
        .skip((page - 1) * page_size)
        .limit(page_size)
    )
    docs = [doc async for doc in found]
    return Page(items=docs, page=page, page_size=page_size, total=total, next_cursor=None)
