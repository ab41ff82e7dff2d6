"""Routes of API keys: created (the key shown once), listed and deleted by admins."""

from fastapi import APIRouter, HTTPException, Response, status

from job_api.api import API_PREFIX
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import (
    ApiKeyCreateAudit,
    ApiKeyDeleteAudit,
    CanManageApiKeys,
    NoQueryParams,
    ServicesDep,
)
from job_api.api.schemas import (
    BODY_TOO_LARGE,
    UNPROCESSABLE,
    ApiKeyCreate,
    ApiKeyCreatedPublic,
    ApiKeyPublic,
    ApiKeysPublic,
    ErrorPublic,
)
from job_api.auth.keys import ApiKeyNameTakenError, ApiKeyRecord, LastAdminKeyError

router = APIRouter(
    prefix=f"{API_PREFIX}/api-keys",
    tags=["api keys"],
    route_class=JsonTextRoute,
    responses={
        401: {"model": ErrorPublic, "description": "No API key, or not a valid one."},
        403: {"model": ErrorPublic, "description": "Only admins manage API keys."},
        **UNPROCESSABLE,
    },
)


def _public(record: ApiKeyRecord) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=record.id,
        name=record.name,
        role=record.role,
        created_at=record.created_at,
        created_by=record.created_by,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreatedPublic,
    responses={
        **BODY_TOO_LARGE,
        409: {"model": ErrorPublic, "description": "A key has this name already."},
    },
)
async def create_api_key(
    audit: ApiKeyCreateAudit, services: ServicesDep, body: ApiKeyCreate, params: NoQueryParams
) -> ApiKeyCreatedPublic:
    """Create an API key; the answer holds the key itself, shown this once."""
    audit.target = body.name
    try:
        record, key = await services.api_keys.create(body.name, body.role, audit.principal.name)
    except ApiKeyNameTakenError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    audit.status_code = 201
    return ApiKeyCreatedPublic(**_public(record).model_dump(), key=key)


@router.get("", response_model=ApiKeysPublic)
async def list_api_keys(
    principal: CanManageApiKeys, services: ServicesDep, params: NoQueryParams
) -> ApiKeysPublic:
    """Every API key by name, without the keys themselves (only their hashes are stored)."""
    return ApiKeysPublic(items=[_public(record) for record in await services.api_keys.list()])


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        404: {"model": ErrorPublic, "description": "No key with this id."},
        409: {"model": ErrorPublic, "description": "It is the last admin key."},
    },
)
async def delete_api_key(
    audit: ApiKeyDeleteAudit, services: ServicesDep, key_id: str, params: NoQueryParams
) -> Response:
    """Delete an API key; it and the console sessions signed in with it stop working at once."""
    found = await services.api_keys.get(key_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no API key with id {key_id!r}")
    audit.target = found.name
    try:
        deleted = await services.api_keys.delete(key_id)
    except LastAdminKeyError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
    if deleted is None:
        raise HTTPException(status_code=404, detail=f"no API key with id {key_id!r}")
    await services.sessions.delete_for_key(key_id)
    audit.status_code = 204
    return Response(status_code=204)
