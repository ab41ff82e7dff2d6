"""Routes of job instances: list, read, submit, the operator's decisions, archive and delete."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status
from provisioning_common.envelope import utcnow
from provisioning_common.events import JobCreated
from provisioning_common.logs import current_job_id
from provisioning_common.requests import JobRequest
from provisioning_common.statuses import (
    AWAITING_DECISION_JOB_STATUSES,
    FINISHED_JOB_STATUSES,
    RESTARTABLE_JOB_STATUSES,
    JobStatus,
)
from pydantic import BeforeValidator

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import (
    MAX_PAGE_NUMBER,
    ArchiveAudit,
    AuditRecorder,
    CancelAudit,
    CanView,
    DatabaseDep,
    DeleteAudit,
    JobId,
    PageNumber,
    PageSize,
    RestartAudit,
    ServicesDep,
    SubmitAudit,
    UnarchiveAudit,
    ValidateAudit,
    reject_unknown_query_params,
)
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
from job_api.bootstrap import JobApiServices
from job_api.domain.projection import stored_time
from job_api.handlers.intake import DuplicateRequest, submit_job_request

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix=f"{API_PREFIX}/jobs",
    tags=["job instances"],
    route_class=JsonTextRoute,
    dependencies=[Depends(reject_unknown_query_params)],
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
_STATUS_NAMES = ", ".join(s.value for s in JobStatus)


def _statuses(raw: str | None) -> tuple[JobStatus, ...]:
    if raw is None:
        return ()
    found: list[JobStatus] = []
    for part in raw.split(","):
        name = part.strip().upper()
        if not name:
            continue
        try:
            found.append(JobStatus(name))
        except ValueError:
            raise HTTPException(
                status_code=422,
                detail=f"status: {part.strip()!r} is not a job status; use one or more of "
                f"{_STATUS_NAMES}, separated by commas",
            ) from None
    return tuple(found)


def _iso_8601_or_blank(value: Any) -> Any:
    # Empty is no filter, as in issue 4's URL template (`created_from=&created_to=`). A number
    # is refused: pydantic reads it as seconds since 1970, so created_from=2026, meant as the
    # year, would list every job.
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError("give an ISO 8601 date, such as 2026-12-01 or 2026-12-01T07:00:00Z")


DateFilter = Annotated[datetime | None, BeforeValidator(_iso_8601_or_blank)]


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status_code=422, detail=detail)


def _utc(moment: datetime | None, name: str) -> datetime | None:
    # A date without an offset is read as UTC, the zone every stored date is in.
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _unprocessable(
            f"{name}: {moment.isoformat()} is out of range: in UTC it is not between the years "
            "1 and 9999"
        ) from None


@router.get("", response_model=JobInstancesPublic)
async def list_job_instances(
    principal: CanView,
    services: ServicesDep,
    db: DatabaseDep,
    page: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_PAGE_NUMBER,
            description=f"Page number, 1 to {MAX_PAGE_NUMBER}; not with cursor (which pages "
            "at any depth).",
        ),
    ] = None,
    page_size: PageSize = 10,
    status_filter: Annotated[
        str | None,
        Query(
            alias="status",
            description=f"Comma-separated statuses: {_STATUS_NAMES}.",
            examples=["THRESHOLD,VALIDATED"],
        ),
    ] = None,
    definition_id: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[
        DateFilter, Query(description="ISO 8601; created at or after (UTC if no offset).")
    ] = None,
    created_to: Annotated[
        DateFilter, Query(description="ISO 8601; created at or before (UTC if no offset).")
    ] = None,
    archived: Annotated[
        views.Archived, Query(description="false: hide archived (default); true: only; any.")
    ] = "false",
    sort: Annotated[
        str,
        Query(
            description="created_at, started_at, ended_at, status or definition_id; a leading "
            "'-' sorts descending.",
            # Documented as the list it is; checked by views.Sort, whose 422 says what to send.
            json_schema_extra={"enum": [*views.SORT_FIELDS, *(f"-{f}" for f in views.SORT_FIELDS)]},
        ),
    ] = "-created_at",
    cursor: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="next_cursor of the previous page: keyset paging, cost independent of "
            "depth.",
        ),
    ] = None,
) -> JobInstancesPublic:
    """A page of job instances, by page number or by cursor, filtered and sorted."""
    if cursor is not None and page is not None:
        raise _unprocessable("give page or cursor, not both: cursor= continues after a page")
    try:
        order = views.Sort.parse(sort)
        after = views.Cursor.decode(cursor) if cursor is not None else None
    except ValueError as error:
        raise _unprocessable(str(error)) from None
    created_from = _utc(created_from, "created_from")
    created_to = _utc(created_to, "created_to")
    if created_from and created_to and created_from > created_to:
        raise _unprocessable("created_from: is after created_to; swap them")
    query = views.JobInstanceQuery(
        statuses=_statuses(status_filter),
        definition_id=definition_id or None,  # empty: no filter, as an empty status
        created_from=created_from,
        created_to=created_to,
        archived=archived,
        sort=order,
        page=page or 1,
        page_size=page_size,
        cursor=after,
    )
    try:
        found = await views.list_job_instances(db, query)
    except views.InvalidCursorError as error:
        raise _unprocessable(str(error)) from None
    services.metrics.jobs_listed.inc(len(found.items))
    services.metrics.job_pages.labels("cursor" if after else "page").inc()
    return JobInstancesPublic(
        items=[JobInstancePublic.model_validate(doc) for doc in found.items],
        page=found.page,
        page_size=found.page_size,
        total=found.total,
        pages=found.pages,
        next_cursor=found.next_cursor,
    )


async def _job_instance(db: Any, job_id: str) -> dict[str, Any]:
    doc = await views.get_job_instance(db, job_id)
    if doc is None:
        raise HTTPException(status_code=404, detail=f"no job instance with id {job_id}")
    return doc


@router.get("/{job_id}", response_model=JobInstancePublic, responses=_NOT_FOUND)
async def get_job_instance(principal: CanView, db: DatabaseDep, job_id: JobId) -> JobInstancePublic:
    """One job instance with its sequence instances, counts, threshold and decisions."""
    return JobInstancePublic.model_validate(await _job_instance(db, str(job_id)))


@router.get(
    "/{job_id}/sequences/{index}/changes", response_model=PlannedChangesPublic, responses=_NOT_FOUND
)
async def list_planned_changes(
    principal: CanView,
    db: DatabaseDep,
    job_id: JobId,
    index: Annotated[int, Path(ge=0, description="The sequence's position, from 0.")],
    action: Annotated[
        Literal["create", "update", "delete"] | None, Query(description="Only this action.")
    ] = None,
    page: PageNumber = 1,
    page_size: PageSize = 10,
) -> PlannedChangesPublic:
    """The planned changes of a sequence, page by page: what an operator checks first."""
    doc = await _job_instance(db, str(job_id))
    sequence = next((s for s in doc.get("sequences", []) if s.get("index") == index), None)
    if sequence is None:
        count = len(doc.get("sequences", []))
        raise HTTPException(
            status_code=404,
            detail=f"job {job_id} has no sequence {index}; its sequences are 0 to {count - 1}",
        )
    plan_id = sequence.get("plan_id")
    if plan_id is None:
        items: list[PlannedChangePublic] = []
        total = 0
    else:
        found = await views.list_planned_changes(db, plan_id, action, page, page_size)
        items = [PlannedChangePublic.model_validate(change) for change in found.items]
        total = found.total
    return PlannedChangesPublic(
        items=items,
        page=page,
        page_size=page_size,
        total=total,
        pages=-(-total // page_size),
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
    },
)
async def submit_job(
    audit: SubmitAudit, services: ServicesDep, request: JobRequest
) -> JobSubmittedPublic:
    """Submit a job request, as on provisioning.job-requests; the job is readable at once."""
    if "requested_by" not in request.model_fields_set:
        # Who called is known here; the body's default "unknown" would hide it.
        request = request.model_copy(update={"requested_by": audit.principal.name})
    result = await submit_job_request(
        request,
        origin="api",
        definitions=services.definitions,
        job_instances=services.job_instances,
        publisher=services.job_events,
    )
    if isinstance(result, DuplicateRequest):
        audit.job_id, audit.status_code = result.job_id, 202
        services.metrics.job_requests.labels("duplicate").inc()
        return JobSubmittedPublic(id=result.job_id, status=JobStatus(result.status))
    audit.job_id = result.subject
    if isinstance(result, JobCreated):
        audit.status_code = 202
        services.metrics.job_requests.labels("accepted").inc()
        return JobSubmittedPublic(id=result.subject, status=JobStatus.QUEUED)
    services.metrics.job_requests.labels("rejected").inc()
    raise HTTPException(status_code=422, detail=result.data.reason)


async def _decidable(
    services: JobApiServices, job_id: str, allowed: frozenset[JobStatus], verb: str
) -> dict[str, Any]:
    """The job instance, when its projected status allows `verb`; else 404 or 409."""
    doc = await _job_instance(services.db, job_id)
    current = doc["status"]
    if current not in allowed:
        wanted = " or ".join(sorted(allowed))
        raise HTTPException(
            status_code=409,
            detail=f"job {job_id} is {current}: only a job at {wanted} can be {verb}",
        )
    return doc


def _changed_meanwhile(job_id: str) -> HTTPException:
    return HTTPException(
        status_code=409, detail=f"job {job_id} changed while this call ran; read it and retry"
    )


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
    body: Annotated[ValidateThresholdCreate | None, Body()] = None,
) -> CommandAcceptedPublic:
    """Approve the planned counts of the sequence blocked at its threshold; nothing runs yet."""
    key = str(job_id)
    with _about(key):
        doc = await _decidable(services, key, frozenset({JobStatus.THRESHOLD}), "validated")
        plan_id = body.plan_id if body is not None else None
        command_id = await services.commands.validate_threshold(
            key, audit.principal.name, plan_id, expected_status=JobStatus(doc["status"])
        )
        return _accepted(audit, services, command_id, "ValidateThreshold")


@router.post(
    "/{job_id}/threshold/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAcceptedPublic,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def cancel_job(
    audit: CancelAudit, services: ServicesDep, job_id: JobId
) -> CommandAcceptedPublic:
    """Cancel the blocked sequence and every later one; the job ends CANCELED."""
    key = str(job_id)
    with _about(key):
        doc = await _decidable(services, key, AWAITING_DECISION_JOB_STATUSES, "canceled")
        command_id = await services.commands.cancel_job(
            key, audit.principal.name, expected_status=JobStatus(doc["status"])
        )
        return _accepted(audit, services, command_id, "CancelJob")


@router.post(
    "/{job_id}/restart",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAcceptedPublic,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def restart_job(
    audit: RestartAudit, services: ServicesDep, job_id: JobId
) -> CommandAcceptedPublic:
    """Run the job again from its first sequence that is not completed."""
    key = str(job_id)
    with _about(key):
        doc = await _decidable(services, key, RESTARTABLE_JOB_STATUSES, "restarted")
        command_id = await services.commands.restart_job(
            key, audit.principal.name, expected_status=JobStatus(doc["status"])
        )
        return _accepted(audit, services, command_id, "RestartJob")


async def _set_archived(
    audit: AuditRecorder, services: JobApiServices, job_id: str, archived: bool
) -> JobInstancePublic:
    verb = "archived" if archived else "unarchived"
    with _about(job_id):
        before = await _decidable(services, job_id, FINISHED_JOB_STATUSES, verb)
        at = stored_time(utcnow())
        by = audit.principal.name
        # Conditional on the status, so a job restarted meanwhile is refused, not archived.
        if not await services.job_instances.set_archived(job_id, archived, by, at):
            await _decidable(services, job_id, FINISHED_JOB_STATUSES, verb)
            raise _changed_meanwhile(job_id)
        try:
            await services.commands.job_archived(job_id, by, archived=archived, at=at)
        except Exception:
            # Without the event the projection and subscribers would disagree: put back what
            # was (archiving an archived job must not unarchive it).
            await services.job_instances.restore_archived(before)
            logger.exception("could not publish JobArchived; %s undone", verb)
            raise HTTPException(
                status_code=503, detail="Kafka did not take the change; nothing changed, retry"
            ) from None
        services.metrics.commands.labels("JobArchived").inc()
        return JobInstancePublic.model_validate(await _job_instance(services.db, job_id))


@router.post(
    "/{job_id}/archive", response_model=JobInstancePublic, responses={**_NOT_FOUND, **_CONFLICT}
)
async def archive_job(
    audit: ArchiveAudit, services: ServicesDep, job_id: JobId
) -> JobInstancePublic:
    """Hide a finished job instance from the default listing; it stays in the database."""
    return await _set_archived(audit, services, str(job_id), archived=True)


@router.post(
    "/{job_id}/unarchive", response_model=JobInstancePublic, responses={**_NOT_FOUND, **_CONFLICT}
)
async def unarchive_job(
    audit: UnarchiveAudit, services: ServicesDep, job_id: JobId
) -> JobInstancePublic:
    """Show an archived job instance in the default listing again."""
    return await _set_archived(audit, services, str(job_id), archived=False)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def delete_job(audit: DeleteAudit, services: ServicesDep, job_id: JobId) -> Response:
    """Delete a finished job instance for good."""
    key = str(job_id)
    with _about(key):
        doc = await _decidable(services, key, FINISHED_JOB_STATUSES, "deleted")
        if not await services.job_instances.delete(key):
            await _decidable(services, key, FINISHED_JOB_STATUSES, "deleted")
            raise _changed_meanwhile(key)
        try:
            await services.commands.job_deleted(key, audit.principal.name)
        except Exception:
            await services.job_instances.insert_if_absent(doc)
            logger.exception("could not publish JobDeleted; the job instance is restored")
            raise HTTPException(
                status_code=503, detail="Kafka did not take the deletion; nothing changed, retry"
            ) from None
        services.metrics.commands.labels("JobDeleted").inc()
        audit.status_code = 204
        return Response(status_code=204)


@contextmanager
def _about(job_id: str) -> Iterator[None]:
    """Every log line while acting on one job carries its id."""
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)
