"""Dependencies of the routes, as Annotated aliases: services, the caller, its permissions."""

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pymongo.asynchronous.database import AsyncDatabase

from job_api.adapters.audit import AuditEntry, Outcome
from job_api.api.errors import unavailable_detail
from job_api.api.queries import NoQuery, PageQuery
from job_api.auth.permissions import Permission, refusal_message
from job_api.auth.principal import Principal
from job_api.auth.tokens import same_secret
from job_api.bootstrap import JobApiServices

logger = logging.getLogger(__name__)

SESSION_COOKIE = "pj_session"
CSRF_COOKIE = "pj_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_services(request: Request) -> JobApiServices:
    services: JobApiServices = request.app.state.services
    return services


ServicesDep = Annotated[JobApiServices, Depends(get_services)]


def get_database(services: ServicesDep) -> AsyncDatabase[dict[str, Any]]:
    return services.db


DatabaseDep = Annotated[AsyncDatabase[dict[str, Any]], Depends(get_database)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


# Declared as security schemes, so the OpenAPI document lists them and /docs can authorize;
# neither refuses by itself (auto_error=False): get_principal says what is wrong.
bearer_api_key = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key, as 'Authorization: Bearer <api key>'; admins create them.",
    auto_error=False,
)
console_session = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="ConsoleSession",
    description="The console's session cookie, set by POST /api/v1/console/session; calls "
    "that change state also need the X-CSRF-Token header.",
    auto_error=False,
)


async def get_principal(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_api_key)],
    session_token: Annotated[str | None, Depends(console_session)],
) -> Principal:
    """The caller: a Bearer API key, or else the console session cookie (with its CSRF check)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        # The scheme answers None for a header that is not a well-formed Bearer one.
        key = "" if bearer is None else bearer.credentials.strip()
        if not key:
            raise _unauthorized("send the API key as 'Authorization: Bearer <api key>'")
        record = await services.api_keys.authenticate(key)
        if record is None:
            raise _unauthorized(
                "this API key is not valid (mistyped, or deleted); ask an admin for a key"
            )
        return Principal(key_id=record.id, name=record.name, role=record.role, via="bearer")
    if session_token:
        session = await services.sessions.lookup(session_token)
        if session is None:
            raise _unauthorized("your console session has expired or was closed; sign in again")
        key_record = await services.api_keys.get(session.key_id)
        if key_record is None:
            raise _unauthorized("the API key of this console session was deleted; sign in again")
        if request.method not in SAFE_METHODS:
            # A cookie is sent by the browser on any site's request; only our page can read
            # the CSRF token and echo it, so the header proves the request came from it.
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not same_secret(sent, session.csrf_token):
                raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        return Principal(
            key_id=key_record.id, name=key_record.name, role=key_record.role, via="session"
        )
    raise _unauthorized(
        "this call needs an API key: send 'Authorization: Bearer <api key>', "
        "or sign in to the console"
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            raise HTTPException(
                status_code=403, detail=refusal_message(principal.name, principal.role, permission)
            )
        return principal

    return check


CanView = Annotated[Principal, Depends(require(Permission.VIEW))]


class AuditRecorder:
    """Collects what a route learns (job, target, command) for the audit entry of its action."""

    def __init__(
        self,
        services: JobApiServices,
        principal: Principal,
        action: str,
        job_id: str | None,
        target: str | None,
    ) -> None:
        self.services = services
        self.principal = principal
        self.action = action
        self.job_id = job_id
        self.target = target
        self.command_id: str | None = None
        self.status_code = 200
        self._pending: AuditEntry | None = None

    def _entry(self, outcome: Outcome, status_code: int, reason: str | None) -> AuditEntry:
        return AuditEntry(
            actor=self.principal.name,
            role=str(self.principal.role),
            action=self.action,
            outcome=outcome,
            status_code=status_code,
            job_id=self.job_id,
            target=self.target,
            reason=reason,
            command_id=self.command_id,
        )

    async def begin(self) -> None:
        """Record the action as pending before it runs: if that fails, it does not run.

        Written after the action, the entry of an action that happened (a command on Kafka)
        was lost whenever the write failed.
        """
        self._pending = self._entry("pending", 0, None)
        await self.services.audit.record(self._pending)

    async def write(self, outcome: Outcome, status_code: int, reason: str | None) -> None:
        entry = self._entry(outcome, status_code, reason)
        try:
            if self._pending is None:
                await self.services.audit.record(entry)
            else:
                entry = replace(entry, id=self._pending.id, at=self._pending.at)
                await self.services.audit.settle(entry)
        except Exception:
            # The action already happened (a command may be on Kafka) and its pending entry
            # says who started it: answer it, and leave the failure where operators look.
            logger.exception(
                "could not record how audit entry %s ended: %s",
                entry.id,
                entry.to_document(),
                extra={"job_id": entry.job_id},
            )
            return
        self.services.metrics.audit_entries.labels(self.action, outcome).inc()


def audited(
    action: str, permission: Permission
) -> Callable[[Request, JobApiServices, Principal], AsyncIterator[AuditRecorder]]:
    """Checks the permission and records the action, accepted or refused, with its status."""

    async def record(
        request: Request, services: ServicesDep, principal: PrincipalDep
    ) -> AsyncIterator[AuditRecorder]:
        path = request.path_params
        job_id = _canonical_job_id(path.get("job_id"))
        target = path.get("definition_id") or path.get("key_id")
        recorder = AuditRecorder(services, principal, action, job_id, target)
        if not principal.can(permission):
            detail = refusal_message(principal.name, principal.role, permission)
            await recorder.write("rejected", 403, detail)
            raise HTTPException(status_code=403, detail=detail)
        await recorder.begin()
        try:
            yield recorder
        except HTTPException as error:
            await recorder.write("rejected", error.status_code, str(error.detail))
            raise
        except RequestValidationError as error:
            await recorder.write("rejected", 422, _validation_summary(error))
            raise
        except Exception as error:
            unavailable = unavailable_detail(error)
            if unavailable is not None:
                await recorder.write("rejected", 503, unavailable)
            else:
                await recorder.write("rejected", 500, "internal error (see the job-api log)")
            raise
        else:
            await recorder.write("accepted", recorder.status_code, None)

    return record


def _canonical_job_id(raw: str | None) -> str | None:
    """The job id as stored and answered, however the path spelled the UUID (capitals, no
    hyphens): the audit trail of a job lists every action on it."""
    if raw is None:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        return raw  # the route answers 422, audited with what was sent


def _validation_summary(error: RequestValidationError) -> str:
    phrases = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        phrases.append(f"{location}: {item.get('msg', 'invalid')}")
    return "; ".join(phrases)[:2000] or "invalid request"


def _audit_dependency(action: str, permission: Permission) -> Any:
    return Depends(audited(action, permission))


SubmitAudit = Annotated[AuditRecorder, _audit_dependency("submit", Permission.SUBMIT)]
ValidateAudit = Annotated[AuditRecorder, _audit_dependency("validate", Permission.VALIDATE)]
CancelAudit = Annotated[AuditRecorder, _audit_dependency("cancel", Permission.CANCEL)]
RestartAudit = Annotated[AuditRecorder, _audit_dependency("restart", Permission.RESTART)]
ArchiveAudit = Annotated[AuditRecorder, _audit_dependency("archive", Permission.ARCHIVE)]
UnarchiveAudit = Annotated[AuditRecorder, _audit_dependency("unarchive", Permission.ARCHIVE)]
DeleteAudit = Annotated[AuditRecorder, _audit_dependency("delete", Permission.DELETE)]
RevertAudit = Annotated[AuditRecorder, _audit_dependency("revert", Permission.REVERT)]
DefinitionCreateAudit = Annotated[
    AuditRecorder, _audit_dependency("definition.create", Permission.MANAGE_DEFINITIONS)
]
DefinitionReplaceAudit = Annotated[
    AuditRecorder, _audit_dependency("definition.replace", Permission.MANAGE_DEFINITIONS)
]
DefinitionDeleteAudit = Annotated[
    AuditRecorder, _audit_dependency("definition.delete", Permission.MANAGE_DEFINITIONS)
]
ApiKeyCreateAudit = Annotated[
    AuditRecorder, _audit_dependency("api_key.create", Permission.MANAGE_API_KEYS)
]
ApiKeyDeleteAudit = Annotated[
    AuditRecorder, _audit_dependency("api_key.delete", Permission.MANAGE_API_KEYS)
]
CanManageApiKeys = Annotated[Principal, Depends(require(Permission.MANAGE_API_KEYS))]
CanViewAudit = Annotated[Principal, Depends(require(Permission.VIEW_AUDIT))]


JobId = Annotated[UUID, Path(description="The job id (a UUID, derived from the request id).")]
# A route without query parameters takes this one, so that it refuses any (see api/queries.py).
NoQueryParams = Annotated[NoQuery, Query()]
PageParams = Annotated[PageQuery, Query()]
