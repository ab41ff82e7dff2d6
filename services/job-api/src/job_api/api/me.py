"""GET /api/v1/me: who the caller is and what it may do, so the console shows only its buttons."""

from fastapi import APIRouter

from job_api.api import API_PREFIX
from job_api.api.deps import NoQueryParams, PrincipalDep
from job_api.api.schemas import UNPROCESSABLE, ErrorPublic, MePublic
from job_api.auth.permissions import permissions_of

router = APIRouter(
    prefix=API_PREFIX,
    tags=["access"],
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        **UNPROCESSABLE,
    },
)


@router.get("/me", response_model=MePublic)
async def read_me(principal: PrincipalDep, params: NoQueryParams) -> MePublic:
    """The caller's key name, role and permissions."""
    return MePublic(
        name=principal.name, role=principal.role, permissions=permissions_of(principal.role)
    )
