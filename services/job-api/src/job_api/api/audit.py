"""The audit trail route: every operator action, newest first, for admins."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from job_api import views
from job_api.api import API_PREFIX
from job_api.api.deps import (
    CanViewAudit,
    DatabaseDep,
)
from job_api.api.queries import AuditQuery
from job_api.api.schemas import (
    UNPROCESSABLE,
    AuditEntriesPublic,
    AuditEntryPublic,
    ErrorPublic,
)

router = APIRouter(
    prefix=f"{API_PREFIX}/audit",
    tags=["audit"],
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
    params: Annotated[AuditQuery, Query()],
) -> AuditEntriesPublic:
    """Who did what, when, to which job, and how it ended; newest first, filtered."""
    try:
        query = params.for_listing()
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    found = await views.list_audit_entries(db, params.page, params.page_size, query)
    return AuditEntriesPublic(
        items=[AuditEntryPublic.model_validate({**e, "id": e["_id"]}) for e in found.items],
        page=params.page,
        page_size=params.page_size,
        total=found.total,
        pages=found.pages,
    )
