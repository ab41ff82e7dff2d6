"""Console sign-in: an API key becomes an HttpOnly session cookie plus a CSRF token."""

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from job_api.adapters.audit import AuditEntry
from job_api.api.bodies import JsonTextRoute
from job_api.api.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, ServicesDep
from job_api.api.schemas import BODY_TOO_LARGE, ErrorPublic, SessionPublic
from job_api.auth.permissions import permissions_of
from job_api.auth.tokens import same_secret
from job_api.bootstrap import JobApiServices

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/console/session", tags=["console session"], route_class=JsonTextRoute)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SIGN_IN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["api_key"],
                    "properties": {"api_key": {"type": "string", "format": "password"}},
                }
            }
            for media in ("application/json", *_FORM_TYPES)
        },
    }
}


async def _api_key_of(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    value: Any = None
    if content_type in _FORM_TYPES:
        form = await request.form()
        value = form.get("api_key")
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(status_code=422, detail="body: not valid JSON") from None
        value = body.get("api_key") if isinstance(body, dict) else None
    else:
        raise HTTPException(
            status_code=415,
            detail="send the api_key field as JSON, or as a form "
            "(application/x-www-form-urlencoded)",
        )
    if not isinstance(value, str) or not value.strip():
        raise HTTPException(status_code=422, detail="api_key: give the API key to sign in with")
    return value.strip()


def _foreign_origin(request: Request) -> str | None:
    """The origin of a browser request sent by another site, or None.

    Browsers send Origin (and Sec-Fetch-Site) with every cross-site POST; a client that is not
    a browser sends neither and is not at risk.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return request.headers.get("origin") or "cross-site"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    host = request.headers.get("host", "")
    # The host is compared, not the scheme: behind a proxy that ends TLS, the page is https
    # while this request arrives as http.
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        return origin
    return None


async def _audit_refused_sign_in(services: JobApiServices, status_code: int, reason: str) -> None:
    await services.audit.record(
        AuditEntry(
            actor="unknown",
            role=None,
            action="console.sign_in",
            outcome="rejected",
            status_code=status_code,
            reason=reason,
        )
    )


def _set_cookies(
    response: Response, services: JobApiServices, token: str, csrf_token: str, max_age: int
) -> None:
    secure = services.settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    # Readable by the console's script (not HttpOnly): it echoes it as X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="strict",
        secure=secure,
    )


def _clear_cookies(response: Response, services: JobApiServices) -> None:
    secure = services.settings.cookie_secure
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", httponly=httponly, samesite="strict", secure=secure)


@router.post(
    "",
    response_model=SessionPublic,
    openapi_extra=_SIGN_IN_BODY,
    responses={
        **BODY_TOO_LARGE,
        400: {"model": ErrorPublic, "description": "A form that cannot be parsed."},
        401: {"model": ErrorPublic, "description": "Not a valid API key."},
        415: {"model": ErrorPublic, "description": "Neither JSON nor a form."},
        422: {"model": ErrorPublic, "description": "No api_key field, or JSON that is not."},
    },
)
async def sign_in(request: Request, services: ServicesDep) -> Response:
    """Sign in to the console with an API key (JSON or form field api_key); sets the cookies."""
    foreign = _foreign_origin(request)
    if foreign is not None:
        # Login CSRF: another site's form would sign this browser in with the attacker's key,
        # and what the victim then does in the console is done, and audited, as the attacker.
        detail = f"sign-in from another site ({foreign}) refused: sign in on the console's page"
        await _audit_refused_sign_in(services, 403, detail)
        raise HTTPException(status_code=403, detail=detail)
    record = await services.api_keys.authenticate(await _api_key_of(request))
    if record is None:
        logger.warning("console sign-in refused: unknown API key")
        detail = "this API key is not valid (mistyped, or deleted)"
        # Audited, so that guessing keys shows in the trail (the key itself never does).
        await _audit_refused_sign_in(services, 401, detail)
        raise HTTPException(status_code=401, detail=detail)
    ttl = timedelta(hours=services.settings.session_ttl_hours)
    session = await services.sessions.create(record, ttl)
    body = SessionPublic(
        name=record.name,
        role=record.role,
        permissions=permissions_of(record.role),
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )
    response = JSONResponse(body.model_dump(mode="json"))
    _set_cookies(response, services, session.token, session.csrf_token, int(ttl.total_seconds()))
    await services.audit.record(
        AuditEntry(
            actor=record.name,
            role=str(record.role),
            action="console.sign_in",
            outcome="accepted",
            status_code=200,
        )
    )
    return response


@router.get(
    "",
    response_model=SessionPublic,
    responses={401: {"model": ErrorPublic, "description": "Not signed in."}},
)
async def read_session(request: Request, services: ServicesDep) -> SessionPublic:
    """The console session of this browser: who, which permissions, its CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    session = await services.sessions.lookup(token) if token else None
    key = await services.api_keys.get(session.key_id) if session else None
    if session is None or key is None:
        raise HTTPException(status_code=401, detail="not signed in to the console; sign in")
    return SessionPublic(
        name=key.name,
        role=key.role,
        permissions=permissions_of(key.role),
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    responses={403: {"model": ErrorPublic, "description": "Missing or wrong CSRF token."}},
)
async def sign_out(request: Request, services: ServicesDep) -> Response:
    """Sign out of the console: the session ends and its cookies are cleared."""
    token = request.cookies.get(SESSION_COOKIE)
    session = await services.sessions.lookup(token) if token else None
    if token and session is not None:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same_secret(sent, session.csrf_token):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        await services.sessions.delete(token)
    response = Response(status_code=204)
    _clear_cookies(response, services)
    return response
