"""Routes of reverts: undo an applied sequence with a new job (or preview it as a dry run), and
read the conflicts a revert's plan found."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from provisioning_common.events import JobCreated
from provisioning_common.statuses import JobStatus

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import (
    CanView,
    DatabaseDep,
    JobId,
    NoQueryParams,
    RevertAudit,
    ServicesDep,
)
from job_api.api.queries import PageQuery
from job_api.api.schemas import (
    BODY_TOO_LARGE,
    UNPROCESSABLE,
    ErrorPublic,
    JobSubmittedPublic,
    RevertConflictPublic,
    RevertConflictsPublic,
    RevertCreate,
)
from job_api.domain.reverts import RevertRefusedError
from job_api.handlers.job_requests import DuplicateRequest, RequestOfDeletedJob
from job_api.handlers.reverts import RevertRequest, request_revert

router = APIRouter(
    prefix=f"{API_PREFIX}/jobs",
    tags=["reverts"],
    route_class=JsonTextRoute,
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "The key's role lacks the permission."},
        **UNPROCESSABLE,
    },
)

SequenceIndex = Annotated[int, Path(ge=0, description="The sequence's position, from 0.")]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such job instance or sequence."},
    409: {"model": ErrorPublic, "description": "The sequence is not COMPLETED."},
    **BODY_TOO_LARGE,
}


@router.post(
    "/{job_id}/sequences/{index}/revert",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobSubmittedPublic,
    responses=_ANSWERS,
)
async def revert_sequence(
    audit: RevertAudit,
    services: ServicesDep,
    job_id: JobId,
    index: SequenceIndex,
    params: NoQueryParams,
    body: Annotated[RevertCreate | None, Body()] = None,
) -> JobSubmittedPublic:
    """Start a job that undoes what a COMPLETED sequence applied (with dry_run: a preview)."""
    wanted = body or RevertCreate()
    try:
        result = await request_revert(
            RevertRequest(
                job_id=str(job_id),
                index=index,
                requested_by=audit.principal.name,
                include_conflicts=wanted.include_conflicts,
                dry_run=wanted.dry_run,
                request_id=wanted.request_id,
            ),
            job_instances=services.intake_records,
            publisher=services.job_events,
        )
    except RevertRefusedError as refused:
        raise HTTPException(status_code=refused.status_code, detail=str(refused)) from None
    if isinstance(result, DuplicateRequest):
        audit.status_code = 202
        known = None if result.status is None else JobStatus(result.status)
        return JobSubmittedPublic(id=result.job_id, status=known)
    if isinstance(result, RequestOfDeletedJob):
        raise HTTPException(status_code=409, detail=result.reason)
    if isinstance(result, JobCreated):
        audit.status_code = 202
        services.metrics.job_requests.labels("accepted").inc()
        return JobSubmittedPublic(id=result.subject, status=JobStatus.QUEUED)
    raise HTTPException(status_code=422, detail=result.data.reason)


@router.get(
    "/{job_id}/sequences/{index}/conflicts",
    response_model=RevertConflictsPublic,
    responses={404: _ANSWERS[404]},
)
async def list_revert_conflicts(
    principal: CanView,
    db: DatabaseDep,
    job_id: JobId,
    index: SequenceIndex,
    params: Annotated[PageQuery, Query()],
) -> RevertConflictsPublic:
    """A revert job's conflicts: records changed since the reverted sequence ran, with their
    current value, left alone unless the revert includes them."""
    doc = await views.get_job_instance(db, str(job_id))
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no job instance with id {job_id}")
    sequence = doc.sequence(index)
    if sequence is None:
        raise HTTPException(status_code=404, detail=f"job {job_id} has no sequence {index}")
    items: list[RevertConflictPublic] = []
    total = 0
    if sequence.plan_id is not None:
        found = await views.list_revert_conflicts(
            db, sequence.plan_id, params.page, params.page_size
        )
        items = [RevertConflictPublic.model_validate(conflict) for conflict in found.items]
        total = found.total
    return RevertConflictsPublic(
        items=items,
        page=params.page,
        page_size=params.page_size,
        total=total,
        pages=-(-total // params.page_size),
        job_id=str(job_id),
        index=index,
        plan_id=sequence.plan_id,
    )
