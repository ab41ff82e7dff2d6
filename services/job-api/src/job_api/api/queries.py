"""Query parameters of the routes, one model each, taken as `Annotated[Model, Query()]`.

Every model forbids parameters it does not declare: a mistyped filter (`stauts=FAILED`) that
was silently ignored would show an operator the wrong jobs. The 422 names the parameters
refused and the ones the call accepts.
"""

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import HTTPException, Request
from provisioning_common.definitions import ChangeAction
from provisioning_common.statuses import JobStatus
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from job_api import views

MAX_PAGE_SIZE = 100
# Far beyond any listing an operator pages through, and small enough that the offset a page
# skips, (page - 1) * page_size, stays a 64-bit integer, the largest MongoDB takes.
MAX_PAGE_NUMBER = 1_000_000
UNKNOWN_QUERY_PARAMETER = "unknown_query_parameter"
STATUS_NAMES = ", ".join(s.value for s in JobStatus)


def refuse_repeated_parameters(request: Request) -> None:
    """Every query parameter of this API takes one value (`status` takes a comma-separated
    list): a second `actor=` would be dropped without a word, and the operator shown entries
    of one actor while asking for two. A 422 naming the parameters instead."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HTTPException(
            status_code=422,
            detail=f"query parameter(s) given more than once: {', '.join(repeated)}; each "
            "takes one value (status takes a comma-separated list)",
        )


class QueryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_only(cls, given: Any) -> Any:
        # Before pydantic's own extra_forbidden errors (one per name, without saying what the
        # call takes): one sentence naming the unknown names and the accepted ones.
        if not isinstance(given, dict):
            return given
        known = {field.alias or name for name, field in cls.model_fields.items()}
        unknown = sorted(set(given) - known)
        if unknown:
            raise PydanticCustomError(
                UNKNOWN_QUERY_PARAMETER,
                "unknown query parameter(s): {unknown}; this call accepts: {accepted}",
                {"unknown": ", ".join(unknown), "accepted": ", ".join(sorted(known)) or "none"},
            )
        return given


class NoQuery(QueryModel):
    """A call that takes no query parameter refuses any."""


class PageQuery(QueryModel):
    page: int = Field(
        default=1, ge=1, le=MAX_PAGE_NUMBER, description=f"Page number, 1 to {MAX_PAGE_NUMBER}."
    )
    page_size: int = Field(
        default=10, ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}."
    )


def _iso_8601_or_blank(value: Any) -> Any:
    # Empty is no filter, as in the console's URL template (`created_from=&created_to=`). A
    # number is refused: pydantic reads it as seconds since 1970, so created_from=2026, meant
    # as the year, would list every job.
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


class JobInstancesQuery(QueryModel):
    page: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PAGE_NUMBER,
        description=f"Page number, 1 to {MAX_PAGE_NUMBER}; not with cursor (which pages at any "
        "depth).",
    )
    page_size: int = Field(
        default=10, ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}."
    )
    status: str | None = Field(
        default=None,
        description=f"Comma-separated statuses: {STATUS_NAMES}.",
        examples=["THRESHOLD,VALIDATED"],
    )
    definition_id: str | None = Field(default=None, max_length=64)
    created_from: DateFilter = Field(
        default=None, description="ISO 8601; created at or after (UTC if no offset)."
    )
    created_to: DateFilter = Field(
        default=None, description="ISO 8601; created at or before (UTC if no offset)."
    )
    archived: views.Archived = Field(
        default="false", description="false: hide archived (default); true: only; any."
    )
    sort: str = Field(
        default="-created_at",
        description="created_at, started_at, ended_at, status or definition_id; a leading '-' "
        "sorts descending.",
        # Documented as the list it is; checked by views.Sort, whose 422 says what to send.
        json_schema_extra={"enum": [*views.SORT_FIELDS, *(f"-{f}" for f in views.SORT_FIELDS)]},
    )
    cursor: str | None = Field(
        default=None,
        max_length=2000,
        description="next_cursor of the previous page: keyset paging, cost independent of depth.",
    )

    def for_listing(self) -> views.JobInstanceQuery:
        """The read model's query; ValueError naming the parameter that cannot be used."""
        if self.cursor is not None and self.page is not None:
            raise ValueError("give page or cursor, not both: cursor= continues after a page")
        created_from = _utc(self.created_from, "created_from")
        created_to = _utc(self.created_to, "created_to")
        if created_from and created_to and created_from > created_to:
            raise ValueError("created_from: is after created_to; swap them")
        return views.JobInstanceQuery(
            statuses=_statuses(self.status),
            definition_id=self.definition_id or None,  # empty: no filter, as an empty status
            created_from=created_from,
            created_to=created_to,
            archived=self.archived,
            sort=views.Sort.parse(self.sort),
            page=self.page or 1,
            page_size=self.page_size,
            cursor=views.Cursor.decode(self.cursor) if self.cursor is not None else None,
        )


def _statuses(raw: str | None) -> tuple[JobStatus, ...]:
    found: list[JobStatus] = []
    for part in (raw or "").split(","):
        name = part.strip().upper()
        if not name:
            continue
        try:
            found.append(JobStatus(name))
        except ValueError:
            raise ValueError(
                f"status: {part.strip()!r} is not a job status; use one or more of "
                f"{STATUS_NAMES}, separated by commas"
            ) from None
    return tuple(found)


def _utc(moment: datetime | None, name: str) -> datetime | None:
    # A date without an offset is read as UTC, the zone every stored date is in.
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{name}: {moment.isoformat()} is out of range: in UTC it is not between the years "
            "1 and 9999"
        ) from None


class PlannedChangesQuery(PageQuery):
    action: ChangeAction | None = Field(
        default=None,
        description="Only this action (disable: records locked rather than deleted, "
        'a target\'s `deprovision: "disable"`).',
    )


AUDIT_ACTIONS = (
    "submit",
    "validate",
    "cancel",
    "restart",
    "archive",
    "unarchive",
    "delete",
    "revert",
    "definition.create",
    "definition.replace",
    "definition.delete",
    "api_key.create",
    "api_key.delete",
    "console.sign_in",
)


def _blank_is_none(value: Any) -> Any:
    # The console sends every filter of its form; an empty one is no filter.
    return None if isinstance(value, str) and not value.strip() else value


class AuditQuery(PageQuery):
    job_id: Annotated[UUID | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, description="Only the actions on this job."
    )
    actor: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, max_length=200, description="Only the actions of this API key name."
    )
    action: Annotated[str | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        max_length=64,
        description="Only this action, such as validate or definition.replace.",
        examples=list(AUDIT_ACTIONS),
    )
    at_from: DateFilter = Field(
        default=None, description="ISO 8601; at or after (UTC if no offset)."
    )
    at_to: DateFilter = Field(
        default=None, description="ISO 8601; at or before (UTC if no offset)."
    )

    def for_listing(self) -> views.AuditEntryQuery:
        """The read model's query; ValueError naming the parameter that cannot be used."""
        at_from = _utc(self.at_from, "at_from")
        at_to = _utc(self.at_to, "at_to")
        if at_from and at_to and at_from > at_to:
            raise ValueError("at_from: is after at_to; swap them")
        return views.AuditEntryQuery(
            job_id=None if self.job_id is None else str(self.job_id),
            actor=self.actor,
            action=self.action,
            at_from=at_from,
            at_to=at_to,
        )


# Versions are stored as 64-bit integers: a larger one names no version, and MongoDB's driver
# cannot even send it.
_LARGEST_VERSION = 2**63 - 1


class DefinitionReplaceQuery(QueryModel):
    expected_version: int | None = Field(
        default=None,
        ge=1,
        le=_LARGEST_VERSION,
        description="Replace only if the definition is still at this version.",
    )
