"""Routes of job instances: list, read, submit, the operator's decisions, archive and delete."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response, status
from provisioning_common.events import JobCreated
from provisioning_common.requests import JobRequest
from provisioning_common.statuses import (
    JobStatus,
)

from job_api import views
from job_api.adapters.notification_store import NotificationStore
from job_api.api import API_PREFIX
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import (
    ArchiveAudit,
    AuditRecorder,
    CancelAudit,
    CanView,
    DatabaseDep,
    DeleteAudit,
    JobId,
    NoQueryParams,
    RestartAudit,
    ServicesDep,
    SubmitAudit,
    UnarchiveAudit,
    ValidateAudit,
)
from job_api.api.notifications_public import NotificationPublic, NotificationsPublic
from job_api.api.queries import JobInstancesQuery, PlannedChangesQuery
from job_api.api.schemas import (
    BODY_TOO_LARGE,
    UNPROCESSABLE,
    CommandAcceptedPublic,
    ErrorPublic,
    JobInstancePublic,
    JobInstancesPublic,
    JobSubmittedPublic,
    PlannedChangePublic,
    PlannedChangesPublic,
    UnprocessablePublic,
    ValidateThresholdCreate,
)
from job_api.auth.principal import Principal
from job_api.bootstrap import JobApiServices
from job_api.domain.job_actions import offered_actions
from job_api.domain.job_instance import JobInstance, JobInstanceSummary
from job_api.handlers import job_actions
from job_api.handlers.job_requests import (
    DuplicateRequest,
    RequestOfDeletedJob,
    submit_job_request,
)

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=f"{API_PREFIX}/jobs",
    tags=["job instances"],
    route_class=JsonTextRoute,
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "The key's role lacks the permission."},
        **UNPROCESSABLE,
    },
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No job instance with this id."}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorPublic, "description": "The job's status does not allow it."},
}


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status_code=422, detail=detail)


@router.get("", response_model=JobInstancesPublic)
async def list_job_instances(
    principal: CanView,
    services: ServicesDep,
    db: DatabaseDep,
    params: Annotated[JobInstancesQuery, Query()],
) -> JobInstancesPublic:
    """A page of job instances, by page number or by cursor, filtered and sorted."""
    try:
        query = params.for_listing()
        found = await views.list_job_instances(db, query)
    except ValueError as error:  # a filter, a sort or a cursor that names nothing
        raise _unprocessable(str(error)) from None
    services.metrics.jobs_listed.inc(len(found.items))
    services.metrics.job_pages.labels("cursor" if query.cursor else "page").inc()
    return JobInstancesPublic(
        items=[_public(doc, principal) for doc in found.items],
        page=found.page,
        page_size=found.page_size,
        total=found.total,
        pages=found.pages,
        next_cursor=found.next_cursor,
    )


def _public(doc: JobInstanceSummary, caller: Principal) -> JobInstancePublic:
    """The job instance as published, with what the caller may do to it now."""
    return JobInstancePublic.of(doc, offered_actions(doc, caller.role))


async def _job_instance(db: Any, job_id: str) -> JobInstance:
    doc = await views.get_job_instance(db, job_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no job instance with id {job_id}")
    return doc


@router.get("/{job_id}", response_model=JobInstancePublic, responses=_NOT_FOUND)
async def get_job_instance(
    principal: CanView, db: DatabaseDep, job_id: JobId, params: NoQueryParams
) -> JobInstancePublic:
    """One job instance with its sequence instances, counts, threshold and decisions."""
    return _public(await _job_instance(db, str(job_id)), principal)


@router.get(
    "/{job_id}/sequences/{index}/changes", response_model=PlannedChangesPublic, responses=_NOT_FOUND
)
async def list_planned_changes(
    principal: CanView,
    db: DatabaseDep,
    job_id: JobId,
    index: Annotated[int, Path(ge=0, description="The sequence's position, from 0.")],
    params: Annotated[PlannedChangesQuery, Query()],
) -> PlannedChangesPublic:
    """The planned changes of a sequence, page by page: what an operator checks first."""
    doc = await _job_instance(db, str(job_id))
    sequence = doc.sequence(index)
    if sequence is None:
        count = len(doc.sequences)
        raise HTTPException(
            status_code=404,
            detail=f"job {job_id} has no sequence {index}; its sequences are 0 to {count - 1}",
        )
    plan_id = sequence.plan_id
    if plan_id is None:
        items: list[PlannedChangePublic] = []
        total = 0
    else:
        found = await views.list_planned_changes(
            db, plan_id, params.action, params.page, params.page_size
        )
        items = [PlannedChangePublic.model_validate(change) for change in found.items]
        total = found.total
    return PlannedChangesPublic(
        items=items,
        page=params.page,
        page_size=params.page_size,
        total=total,
        pages=-(-total // params.page_size),
        job_id=str(job_id),
        index=index,
        plan_id=plan_id,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobSubmittedPublic,
    responses={
        **BODY_TOO_LARGE,
        422: {"model": UnprocessablePublic, "description": "The request cannot run, and why."},
        504: {
            "model": ErrorPublic,
            "description": "Not answered within the submission deadline (the broker or the "
            "database is slow or away): the job may or may not have been taken; send the same "
            "request_id again, which never makes a second job.",
        },
    },
)
async def submit_job(
    audit: SubmitAudit, services: ServicesDep, request: JobRequest, params: NoQueryParams
) -> JobSubmittedPublic:
    """Submit a job request, as on provisioning.job-requests; the job is readable at once."""
    # Over HTTP the requester is the authenticated caller, whatever the body says: a body
    # naming someone else (an HR feed, another operator) would put a false name on the job.
    request = request.model_copy(update={"requested_by": audit.principal.name})
    result = await submit_job_request(
        request,
        origin="api",
        definitions=services.definitions,
        job_instances=services.intake_records,
        publisher=services.job_events,
    )
    if isinstance(result, DuplicateRequest):
        audit.job_id, audit.status_code = result.job_id, 202
        services.metrics.job_requests.labels("duplicate").inc()
        known = None if result.status is None else JobStatus(result.status)
        return JobSubmittedPublic(id=result.job_id, status=known)
    if isinstance(result, RequestOfDeletedJob):
        audit.job_id = result.rejected.subject
        services.metrics.job_requests.labels("rejected").inc()
        raise HTTPException(status_code=409, detail=result.reason)
    audit.job_id = result.subject
    if isinstance(result, JobCreated):
        audit.status_code = 202
        services.metrics.job_requests.labels("accepted").inc()
        return JobSubmittedPublic(id=result.subject, status=JobStatus.QUEUED)
    services.metrics.job_requests.labels("rejected").inc()
    raise HTTPException(status_code=422, detail=result.data.reason)


@contextmanager
def _http_errors() -> Iterator[None]:
    """The handlers' refusals as HTTP answers (the audit records them as such)."""
    try:
        yield
    except job_actions.JobNotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except job_actions.ActionRefusedError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    except job_actions.NotPublishedError as error:
        raise HTTPException(status_code=503, detail=str(error)) from None


def _accepted(
    audit: AuditRecorder, services: JobApiServices, command_id: str, kind: str
) -> CommandAcceptedPublic:
    audit.command_id, audit.status_code = command_id, 202
    services.metrics.commands.labels(kind).inc()
    assert audit.job_id is not None
    return CommandAcceptedPublic(command_id=command_id, job_id=audit.job_id)


@router.post(
    "/{job_id}/threshold/validate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAcceptedPublic,
    responses={**_NOT_FOUND, **_CONFLICT, **BODY_TOO_LARGE},
)
async def validate_threshold(
    audit: ValidateAudit,
    services: ServicesDep,
    job_id: JobId,
    params: NoQueryParams,
    body: Annotated[ValidateThresholdCreate | None, Body()] = None,
) -> CommandAcceptedPublic:
    """Approve the planned counts of the sequence blocked at its threshold; nothing runs yet."""
    with _http_errors():
        seen_plan_id = body.plan_id if body is not None else None
        command_id = await services.job_actions.validate_threshold(
            str(job_id), audit.principal.name, seen_plan_id
        )
    return _accepted(audit, services, command_id, "ValidateThreshold")


@router.post(
    "/{job_id}/threshold/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAcceptedPublic,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def cancel_job(
    audit: CancelAudit, services: ServicesDep, job_id: JobId, params: NoQueryParams
) -> CommandAcceptedPublic:
    """Cancel the blocked sequence and every later one; the job ends CANCELED."""
    with _http_errors():
        command_id = await services.job_actions.cancel_job(str(job_id), audit.principal.name)
    return _accepted(audit, services, command_id, "CancelJob")


@router.post(
    "/{job_id}/restart",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAcceptedPublic,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def restart_job(
    audit: RestartAudit, services: ServicesDep, job_id: JobId, params: NoQueryParams
) -> CommandAcceptedPublic:
    """Run the job again from its first sequence that is not completed."""
    with _http_errors():
        command_id = await services.job_actions.restart_job(str(job_id), audit.principal.name)
    return _accepted(audit, services, command_id, "RestartJob")


async def _set_archived(
    audit: AuditRecorder, services: JobApiServices, job_id: str, archived: bool
) -> JobInstancePublic:
    with _http_errors():
        doc = await services.job_actions.set_archived(
            job_id, audit.principal.name, archived=archived
        )
    services.metrics.commands.labels("JobArchived").inc()
    return _public(doc, audit.principal)


@router.post(
    "/{job_id}/archive", response_model=JobInstancePublic, responses={**_NOT_FOUND, **_CONFLICT}
)
async def archive_job(
    audit: ArchiveAudit, services: ServicesDep, job_id: JobId, params: NoQueryParams
) -> JobInstancePublic:
    """Hide a finished job instance from the default listing; it stays in the database."""
    return await _set_archived(audit, services, str(job_id), archived=True)


@router.post(
    "/{job_id}/unarchive", response_model=JobInstancePublic, responses={**_NOT_FOUND, **_CONFLICT}
)
async def unarchive_job(
    audit: UnarchiveAudit, services: ServicesDep, job_id: JobId, params: NoQueryParams
) -> JobInstancePublic:
    """Show an archived job instance in the default listing again."""
    return await _set_archived(audit, services, str(job_id), archived=False)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def delete_job(
    audit: DeleteAudit, services: ServicesDep, job_id: JobId, params: NoQueryParams
) -> Response:
    """Delete a finished job instance for good."""
    with _http_errors():
        await services.job_actions.delete_job(str(job_id), audit.principal.name)
    services.metrics.commands.labels("JobDeleted").inc()
    audit.status_code = 204
    return Response(status_code=204)


@router.get("/{job_id}/notifications", response_model=NotificationsPublic, responses=_NOT_FOUND)
async def list_notifications(
    principal: CanView, db: DatabaseDep, job_id: JobId, params: NoQueryParams
) -> NotificationsPublic:
    """Who was told about this job, by which channel, and every attempt (webhooks retried)."""
    await _job_instance(db, str(job_id))
    deliveries = await NotificationStore(db).of_job(str(job_id))
    return NotificationsPublic(items=[NotificationPublic.of(doc) for doc in deliveries])
