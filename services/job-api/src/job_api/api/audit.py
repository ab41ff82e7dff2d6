"""The audit trail route: every operator action, newest first, for admins."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.deps import (
    CanViewAudit,
    DatabaseDep,
    PageNumber,
    PageSize,
    reject_unknown_query_params,
)
from job_api.api.schemas import (
    UNPROCESSABLE,
    AuditEntriesPublic,
    AuditEntryPublic,
    ErrorPublic,
)

router = APIRouter(
    prefix=f"{API_PREFIX}/audit",
    tags=["audit"],
    dependencies=[Depends(reject_unknown_query_params)],
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "Only admins read the audit trail."},
        **UNPROCESSABLE,
    },
)


@router.get("", response_model=AuditEntriesPublic)
async def list_audit_entries(
    principal: CanViewAudit,
    db: DatabaseDep,
    page: PageNumber = 1,
    page_size: PageSize = 10,
    job_id: Annotated[UUID | None, Query(description="Only the actions on this job.")] = None,
) -> AuditEntriesPublic:
    """Who did what, when, to which job, and how it ended; newest first."""
    found = await views.list_audit_entries(
        db, page, page_size, job_id=None if job_id is None else str(job_id)
    )
    return AuditEntriesPublic(
        items=[AuditEntryPublic.model_validate({**e, "id": e["_id"]}) for e in found.items],
        page=page,
        page_size=page_size,
        total=found.total,
        pages=found.pages,
    )
