"""Routes of job definitions: read by viewers, created, replaced and deleted by admins."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from provisioning_common.definitions import JobDefinition, JobDefinitionBody

from job_api.adapters.definitions import (
    DefinitionIdMismatchError,
    DefinitionNotFoundError,
    DefinitionVersionConflictError,
    DuplicateDefinitionError,
)
from job_api.adapters.schedule_store import ScheduleStore
from job_api.api import API_PREFIX
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import (
    CanView,
    DatabaseDep,
    DefinitionCreateAudit,
    DefinitionDeleteAudit,
    DefinitionReplaceAudit,
    NoQueryParams,
    PageParams,
    ServicesDep,
)
from job_api.api.notifications_public import ScheduleFiringPublic, ScheduleFiringsPublic
from job_api.api.queries import DefinitionReplaceQuery
from job_api.api.schemas import (
    BODY_TOO_LARGE,
    UNPROCESSABLE,
    ErrorPublic,
    JobDefinitionsPublic,
    UnprocessablePublic,
)
from job_api.domain.schedules import next_firing

router = APIRouter(
    prefix=f"{API_PREFIX}/job-definitions",
    tags=["job definitions"],
    route_class=JsonTextRoute,
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "The key's role lacks the permission."},
        **UNPROCESSABLE,
    },
)

DefinitionId = Annotated[str, Path(min_length=1, max_length=64, description="The definition id.")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No definition with this id."}
}


def _not_found(definition_id: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no job definition with id {definition_id!r}")


@router.get("", response_model=JobDefinitionsPublic)
async def list_job_definitions(
    principal: CanView, services: ServicesDep, params: PageParams
) -> JobDefinitionsPublic:
    """A page of job definitions, by id."""
    page, page_size = params.page, params.page_size
    items, total = await services.definitions.list(page, page_size)
    return JobDefinitionsPublic(
        items=items, page=page, page_size=page_size, total=total, pages=-(-total // page_size)
    )


@router.get("/{definition_id}", response_model=JobDefinition, responses=_NOT_FOUND)
async def get_job_definition(
    principal: CanView, services: ServicesDep, definition_id: DefinitionId, params: NoQueryParams
) -> JobDefinition:
    """One job definition at its current version."""
    found = await services.definitions.get(definition_id)
    if found is None:
        raise _not_found(definition_id)
    return found


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobDefinition,
    responses={
        **BODY_TOO_LARGE,
        409: {"model": ErrorPublic, "description": "A definition has this id already."},
    },
)
async def create_job_definition(
    audit: DefinitionCreateAudit,
    services: ServicesDep,
    body: JobDefinitionBody,
    params: NoQueryParams,
) -> JobDefinition:
    """Store a new job definition at version 1."""
    audit.target = body.id
    try:
        created = await services.definitions.create(body)
    except DuplicateDefinitionError as error:
        raise HTTPException(
            status_code=409,
            detail=f"{error}; replace it with PUT /api/v1/job-definitions/{body.id}",
        ) from None
    audit.status_code = 201
    return created


@router.put(
    "/{definition_id}",
    response_model=JobDefinition,
    responses={
        **_NOT_FOUND,
        **BODY_TOO_LARGE,
        409: {"model": ErrorPublic, "description": "expected_version is not the current one."},
        422: {
            "model": UnprocessablePublic,
            "description": "Invalid body, or its id differs from the path's.",
        },
    },
)
async def replace_job_definition(
    audit: DefinitionReplaceAudit,
    services: ServicesDep,
    definition_id: DefinitionId,
    body: JobDefinitionBody,
    params: Annotated[DefinitionReplaceQuery, Query()],
) -> JobDefinition:
    """Replace a job definition (version + 1); jobs already created keep their snapshot."""
    try:
        return await services.definitions.replace(
            definition_id, body, expected_version=params.expected_version
        )
    except DefinitionIdMismatchError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except DefinitionNotFoundError:
        raise HTTPException(
            status_code=404,
            detail=f"no job definition with id {definition_id!r}; create it with POST",
        ) from None
    except DefinitionVersionConflictError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None


@router.delete(
    "/{definition_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **_NOT_FOUND,
        409: {"model": ErrorPublic, "description": "An unfinished job uses the definition."},
    },
)
async def delete_job_definition(
    audit: DefinitionDeleteAudit,
    services: ServicesDep,
    definition_id: DefinitionId,
    params: NoQueryParams,
) -> Response:
    """Delete a job definition no unfinished job uses; past jobs keep their snapshot."""
    if await services.definitions.get(definition_id) is None:
        raise _not_found(definition_id)
    if await services.job_instances.is_in_use(definition_id):
        raise HTTPException(
            status_code=409,
            detail=f"job definition {definition_id!r} is used by an unfinished job; let it "
            "finish, or cancel it, then delete the definition",
        )
    if not await services.definitions.delete(definition_id):
        raise _not_found(definition_id)
    audit.status_code = 204
    return Response(status_code=204)


@router.get("/{definition_id}/firings", response_model=ScheduleFiringsPublic, responses=_NOT_FOUND)
async def list_schedule_firings(
    principal: CanView,
    services: ServicesDep,
    db: DatabaseDep,
    definition_id: DefinitionId,
    params: NoQueryParams,
) -> ScheduleFiringsPublic:
    """The schedule's next firing and its last 50 firings, newest first: the job each
    requested, or why it was skipped."""
    definition = await services.definitions.get(definition_id)
    if definition is None:
        raise _not_found(definition_id)
    firings = await ScheduleStore(db).firings(definition_id)
    schedule = definition.schedule
    return ScheduleFiringsPublic(
        next_at=None if schedule is None else next_firing(schedule, datetime.now(UTC)),
        items=[ScheduleFiringPublic.of(doc) for doc in firings],
    )
