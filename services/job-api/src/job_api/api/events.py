"""Server-sent events of the read model: one job instance, or a page of them, pushed as it changes.

GET /api/v1/jobs/{id}/events follows one job instance; GET /api/v1/jobs/events follows a page
of the list, with the same parameters as GET /api/v1/jobs. SecantusDB, the MongoDB wire server
this product runs on, has no change streams, so each stream polls the read model server-side
(one read every POLL_SECONDS for a job, LIST_POLL_SECONDS for a page) and sends the answer
the matching GET would give, each time it differs. The
browser's EventSource then needs no timer of its own. A stream ends after STREAM_SECONDS and
the browser reconnects by itself: each reconnection is authorized again, so a session that
expired or a key that was deleted stops the updates within that time.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.deps import CanView, DatabaseDep, JobId, NoQueryParams
from job_api.api.queries import JobInstancesQuery
from job_api.api.schemas import UNPROCESSABLE, ErrorPublic, JobInstancePublic, JobInstancesPublic
from job_api.auth.principal import Principal
from job_api.domain.job_actions import offered_actions
from job_api.domain.job_instance import JobInstanceSummary

POLL_SECONDS = 0.5
# A page costs a count and a find: read less often than one job.
LIST_POLL_SECONDS = 1.0
# Short enough that a revoked session stops seeing updates soon; long enough to cost little.
STREAM_SECONDS = 60.0
# A comment line now and then keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# What the browser waits before reconnecting after a stream ends, in milliseconds.
RETRY_MS = 500

router = APIRouter(
    prefix=f"{API_PREFIX}/jobs",
    tags=["job instances"],
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "The key's role lacks the permission."},
        **UNPROCESSABLE,
    },
)


def _public(doc: JobInstanceSummary, caller: Principal) -> JobInstancePublic:
    return JobInstancePublic.of(doc, offered_actions(doc, caller.role))


def _public_json(doc: JobInstanceSummary, caller: Principal) -> str:
    return _public(doc, caller).model_dump_json()


def _event(name: str, data: str) -> str:
    # One line of data: the JSON has no newline, so no line of it can end the event early.
    return f"event: {name}\ndata: {data}\n\n"


async def _changes(
    request: Request,
    name: str,
    first: str,
    read: Callable[[], Awaitable[str | None]],
    every: float,
) -> AsyncIterator[str]:
    """`first` at once, then what `read` answers each time it differs; `read` answering None
    means the thing followed is gone."""
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + STREAM_SECONDS
    quiet_since = loop.time()
    last = first
    yield f"retry: {RETRY_MS}\n\n"
    yield _event(name, first)
    while loop.time() < ends_at:
        await asyncio.sleep(every)
        if await request.is_disconnected():
            return
        current = await read()
        if current is None:
            yield _event("deleted", "{}")
            return
        if current != last:
            last = current
            quiet_since = loop.time()
            yield _event(name, current)
        elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = loop.time()
            yield ": still here\n\n"


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        # no-transform and X-Accel-Buffering: a proxy must pass each event on as it comes.
        headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"},
    )


async def _page_json(db: Any, params: JobInstancesQuery, caller: Principal) -> str:
    try:
        query = params.for_listing()
        found = await views.list_job_instances(db, query)
    except ValueError as error:  # a filter, a sort or a cursor that names nothing
        raise HTTPException(status_code=422, detail=str(error)) from None
    return JobInstancesPublic(
        items=[_public(doc, caller) for doc in found.items],
        page=found.page,
        page_size=found.page_size,
        total=found.total,
        pages=found.pages,
        next_cursor=found.next_cursor,
    ).model_dump_json()


# Declared before /{job_id}/events, and this router is included before the jobs router, whose
# /{job_id} would otherwise take "events" for a job id.
@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `jobs` with the page (as GET /api/v1/jobs "
            "answers it with these parameters) at once and whenever it changes. The stream "
            "ends after a minute and EventSource reconnects.",
        },
    },
)
async def follow_job_instances(
    request: Request,
    principal: CanView,
    db: DatabaseDep,
    params: Annotated[JobInstancesQuery, Query()],
) -> StreamingResponse:
    """Follow a page of job instances: new jobs and every change show without a reload."""
    first = await _page_json(db, params, principal)

    async def read() -> str | None:
        return await _page_json(db, params, principal)

    return _stream(_changes(request, "jobs", first, read, LIST_POLL_SECONDS))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `job` with the job instance (as GET "
            "/api/v1/jobs/{id} answers it) at once and on every change; `deleted` if it is "
            "deleted. The stream ends after a minute and EventSource reconnects.",
        },
        404: {"model": ErrorPublic, "description": "No job instance with this id."},
    },
)
async def follow_job_instance(
    request: Request, principal: CanView, db: DatabaseDep, job_id: JobId, params: NoQueryParams
) -> StreamingResponse:
    """Follow one job instance as it runs: its new state is pushed whenever it changes."""
    doc = await views.get_job_instance(db, str(job_id))
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no job instance with id {job_id}")
    first = _public_json(doc, principal)

    async def read() -> str | None:
        current = await views.get_job_instance(db, str(job_id))
        return None if current is None else _public_json(current, principal)

    return _stream(_changes(request, "job", first, read, POLL_SECONDS))
