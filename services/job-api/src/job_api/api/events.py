"""GET /api/v1/jobs/{id}/events: one job instance as server-sent events, pushed as it changes.

SecantusDB, the MongoDB wire server this product runs on, has no change streams, so the stream
polls the read model server-side (one small read every POLL_SECONDS per open stream) and
sends the job instance, as GET /api/v1/jobs/{id} answers it, each time it differs. The
browser's EventSource then needs no timer of its own. A stream ends after STREAM_SECONDS and
the browser reconnects by itself: each reconnection is authorized again, so a session that
expired or a key that was deleted stops the updates within that time.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from provisioning_common.statuses import JobStatus

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.deps import CanView, DatabaseDep, JobId, NoQueryParams
from job_api.api.schemas import UNPROCESSABLE, ErrorPublic, JobInstancePublic
from job_api.auth.principal import Principal
from job_api.domain.job_actions import allowed_actions
from job_api.domain.job_instance import JobInstance

POLL_SECONDS = 0.5
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


def _public_json(doc: JobInstance, caller: Principal) -> str:
    public = JobInstancePublic.of(
        doc, allowed_actions(JobStatus(doc.status), doc.archived, caller.role)
    )
    return public.model_dump_json()


def _event(name: str, data: str) -> str:
    # One line of data: the JSON has no newline, so no line of it can end the event early.
    return f"event: {name}\ndata: {data}\n\n"


async def _job_events(
    request: Request, db: Any, job_id: str, caller: Principal, first: str
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + STREAM_SECONDS
    quiet_since = loop.time()
    last = first
    yield f"retry: {RETRY_MS}\n\n"
    yield _event("job", first)
    while loop.time() < ends_at:
        await asyncio.sleep(POLL_SECONDS)
        if await request.is_disconnected():
            return
        doc = await views.get_job_instance(db, job_id)
        if doc is None:
            yield _event("deleted", json.dumps({"id": job_id}))
            return
        current = _public_json(doc, caller)
        if current != last:
            last = current
            quiet_since = loop.time()
            yield _event("job", current)
        elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = loop.time()
            yield ": still here\n\n"


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
    return StreamingResponse(
        _job_events(request, db, str(job_id), principal, first),
        media_type="text/event-stream",
        # no-transform and X-Accel-Buffering: a proxy must pass each event on as it comes.
        headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"},
    )
