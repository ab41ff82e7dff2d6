"""Request and response bodies of the REST API: XCreate in, XPublic / XsPublic out."""

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from provisioning_common.definitions import ChangeAction, JobDefinition
from provisioning_common.statuses import JobStatus
from pydantic import BaseModel, ConfigDict, Field

from job_api.auth.permissions import Permission, Role
from job_api.domain.job_actions import JobAction
from job_api.domain.job_instance import JobInstanceSummary

T = TypeVar("T")


class _Public(BaseModel):
    # The read model may carry fields this API does not publish; they are dropped, not refused.
    model_config = ConfigDict(extra="ignore")


class ErrorPublic(BaseModel):
    detail: str = Field(description="What went wrong, in words a person can act on.")


class FieldErrorPublic(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field.")
    msg: str
    type: str


class UnprocessablePublic(BaseModel):
    detail: str | list[FieldErrorPublic] = Field(
        description="A sentence naming the parameter at fault; for a body or parameter that "
        "does not match its schema, FastAPI's list of errors, each naming its field."
    )


# The error answers a route can give besides its own, for the `responses=` of routes.
UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": UnprocessablePublic, "description": "Invalid parameters or body."},
}
BODY_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorPublic, "description": "The body is larger than the configured limit."},
}


# ---- job instances ---------------------------------------------------------------------------


class JobInstancePublic(JobInstanceSummary):
    """The read model's job instance (domain.job_instance), as the API publishes it."""

    definition: dict[str, Any] | None = Field(
        default=None,
        description="The definition snapshot the job runs (in GET /jobs/{id}; not in listings).",
    )
    allowed_actions: list[JobAction] = Field(
        default_factory=list,
        description="What the caller's role may do to the job at its status now (the buttons "
        "the console shows); the server checks the same rules when the action is sent.",
    )

    @classmethod
    def of(cls, doc: JobInstanceSummary, allowed: list[JobAction]) -> "JobInstancePublic":
        fields = doc.model_dump(include=set(cls.model_fields))
        return cls.model_validate({**fields, "allowed_actions": allowed})


class PagePublic(BaseModel, Generic[T]):
    items: list[T]
    page: int | None = Field(description="The page number; null when paging by cursor.")
    page_size: int
    total: int = Field(description="Items matching the filters, on all pages.")
    pages: int


class JobInstancesPublic(PagePublic[JobInstancePublic]):
    total: int | None = Field(  # type: ignore[assignment]
        description="Job instances matching the filters, on all pages; null on a cursor page "
        "(counting every match is the cost a cursor avoids; page=1 gives it)."
    )
    pages: int | None  # type: ignore[assignment]
    next_cursor: str | None = Field(
        description="Pass as cursor= for the next page (keyset paging); null on the last page."
    )


class JobSubmittedPublic(BaseModel):
    id: str = Field(description="The job id, derived from the request id.")
    status: JobStatus | None = Field(
        description="QUEUED for a new job; for a request id already handled, the job's status, "
        "null while the read model does not hold it yet (it is being rebuilt)."
    )


class ValidateThresholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str | None = Field(
        default=None,
        description="The plan the operator looked at; refused if the job is blocked on another.",
    )


class CommandAcceptedPublic(BaseModel):
    command_id: str
    job_id: str
    status: Literal["ACCEPTED"] = "ACCEPTED"


class PlannedChangePublic(_Public):
    seq: int
    # disable: a record that left the source is locked, not deleted (a target's
    # `deprovision: disable`); held against the delete threshold with the deletions.
    action: ChangeAction
    key: Any
    dn: str | None = Field(
        default=None,
        description="Where the change is written, for a directory target: the entry's DN "
        "(for a rename, the DN it has before).",
    )
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class RevertCreate(BaseModel):
    """What an admin asks of a revert: a preview (a dry run) or the revert itself."""

    model_config = ConfigDict(extra="forbid")

    include_conflicts: bool = Field(
        default=False,
        description="Force the records changed since the sequence ran back to their state "
        "before it too; by default they are left alone and listed as conflicts.",
    )
    dry_run: bool = Field(
        default=False,
        description="A preview: the revert job is planned and decided, never applied.",
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same id twice is the same revert job; generated when left out.",
    )


class RevertConflictPublic(_Public):
    """A record changed since the reverted sequence ran."""

    seq: int = Field(description="The change's position in the reverted plan.")
    action: Literal["create", "update", "delete", "disable"] = Field(
        description="What the reverted sequence did to the record."
    )
    key: Any
    before: dict[str, Any] | None = Field(description="The record before the sequence ran.")
    after: dict[str, Any] | None = Field(description="What the sequence wrote.")
    current: dict[str, Any] | None = Field(description="The record now; null when it is gone.")
    reason: Literal["changed", "gone", "back"]
    forced: Literal["create", "update", "delete"] | None = Field(
        description="The change written anyway (conflicts included); null when left alone."
    )


class RevertConflictsPublic(PagePublic[RevertConflictPublic]):
    job_id: str
    index: int
    plan_id: str | None


class PlannedChangesPublic(PagePublic[PlannedChangePublic]):
    job_id: str
    index: int
    plan_id: str | None = Field(description="The sequence's current plan; null before planning.")


# ---- definitions -----------------------------------------------------------------------------


class JobDefinitionsPublic(PagePublic[JobDefinition]):
    pass


# ---- api keys --------------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
        description="Shown in the audit trail as who did what; unique.",
        examples=["ops-1"],
    )
    role: Role


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None = None


class ApiKeyCreatedPublic(ApiKeyPublic):
    key: str = Field(description="The secret, shown this once: it is stored only hashed.")


class ApiKeysPublic(BaseModel):
    items: list[ApiKeyPublic]


# ---- audit, me, session, health --------------------------------------------------------------


class AuditEntryPublic(_Public):
    id: str
    at: datetime
    actor: str = Field(description="The API key name of who acted.")
    role: str | None = None
    action: str
    outcome: Literal["pending", "accepted", "rejected"] = Field(
        description="pending until the action has ended: an entry left pending is an action "
        "whose end could not be recorded (see the job-api log)."
    )
    status_code: int
    job_id: str | None = None
    target: str | None = Field(default=None, description="The definition or API key acted on.")
    reason: str | None = None
    command_id: str | None = None


class AuditEntriesPublic(PagePublic[AuditEntryPublic]):
    pass


class MePublic(BaseModel):
    name: str
    role: Role
    permissions: list[Permission]


class SessionPublic(MePublic):
    csrf_token: str = Field(description="Send as X-CSRF-Token on every call that changes state.")
    expires_at: datetime


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    mongo: bool
    kafka: bool
