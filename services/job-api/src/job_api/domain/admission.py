"""Whether a job request becomes a job instance, and the reason when it does not: pure."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning_common.definitions import InlineSource, JobDefinition
from provisioning_common.envelope import utcnow
from provisioning_common.events import (
    JobCreated,
    JobCreatedData,
    JobRejected,
    JobRejectedData,
    RevertOf,
)
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.requests import JobRequest, Origin
from pydantic import ValidationError

INTAKE_SOURCE = "/provisioning/job-api"
# Subjects of requests too broken to name their request id: stable per raw message, so a
# redelivered message is rejected under the same subject.
_RAW_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:provisioning:malformed-job-request")
_MAX_REASON = 2000


@dataclass(frozen=True)
class HandledRequest:
    """A request id the intake already turned into a job: an entry of the request ledger.

    Kept when the job is deleted, so that the same request sent again (a retry, an intake
    replay, a re-send while the read model is rebuilt) is answered, never run a second time.
    """

    request_id: str
    job_id: str
    # False between the ledger write and the broker's acknowledgement of JobCreated: a crash
    # there leaves a request whose JobCreated is published again when it is sent again.
    published: bool
    deleted_by: str | None = None
    deleted_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def deleted_reason(self) -> str:
        """Why a request for a deleted job is refused, naming the request and the job."""
        when = "" if self.deleted_at is None else f" at {self.deleted_at.isoformat()}"
        by = "" if self.deleted_by is None else f" by {self.deleted_by}"
        return (
            f"request_id: {self.request_id!r} was already handled: it became job {self.job_id}, "
            f"since deleted{by}{when}; send a new request_id to run the definition again"
        )


def accept_job_request(
    request: JobRequest,
    origin: Origin,
    definition: JobDefinition | None,
    *,
    at: datetime | None = None,
    reverts: RevertOf | None = None,
) -> JobCreated | JobRejected:
    """JobCreated with the definition snapshot, or JobRejected naming every problem found.

    A revert job (`reverts`) reads no source, so it takes no inputs for an inline one."""
    problems = request_problems(request, definition)
    if reverts is not None:
        problems = [problem for problem in problems if not problem.startswith("inputs.")]
    if problems or definition is None:
        return reject_job_request(request, origin, "; ".join(problems), at=at)
    return JobCreated(
        source=INTAKE_SOURCE,
        subject=job_id_for_request(request.request_id),
        time=at or utcnow(),
        data=JobCreatedData(
            request_id=request.request_id,
            definition=definition,
            inputs=request.inputs,
            origin=origin,
            requested_by=request.requested_by,
            dry_run=request.dry_run,
            reverts=reverts,
        ),
    )


def reject_job_request(
    request: JobRequest, origin: Origin, reason: str, *, at: datetime | None = None
) -> JobRejected:
    return JobRejected(
        source=INTAKE_SOURCE,
        subject=job_id_for_request(request.request_id),
        time=at or utcnow(),
        data=JobRejectedData(
            request_id=request.request_id,
            definition_id=request.definition_id,
            origin=origin,
            requested_by=request.requested_by,
            reason=_bounded(reason),
        ),
    )


def request_problems(request: JobRequest, definition: JobDefinition | None) -> list[str]:
    """Why `request` cannot run `definition`, one sentence per problem; empty when it can."""
    if definition is None or definition.id != request.definition_id:
        return [f"definition_id: unknown job definition {request.definition_id!r}"]
    problems: list[str] = []
    by_name = {s.name: s for s in definition.sequences}
    for sequence in definition.sequences:
        inline = isinstance(sequence.source, InlineSource)
        if inline and sequence.name not in request.inputs:
            problems.append(
                f"inputs.{sequence.name}: sequence {sequence.name!r} has an inline source; "
                "give its records (a list of objects) in inputs"
            )
        if not inline and sequence.name in request.inputs:
            problems.append(
                f"inputs.{sequence.name}: sequence {sequence.name!r} reads a "
                f"{sequence.source.type} file and takes no inputs"
            )
    for name in sorted(set(request.inputs) - set(by_name)):
        problems.append(
            f"inputs.{name}: definition {definition.id!r} has no sequence named {name!r}"
        )
    return problems


def reject_malformed(
    raw: bytes, reason: str, origin: Origin, *, at: datetime | None = None
) -> JobRejected:
    """JobRejected for a message that is not a valid JobRequest, with what could be read of it."""
    fields = _readable_fields(raw)
    request_id = fields.get("request_id")
    return JobRejected(
        source=INTAKE_SOURCE,
        subject=subject_for_raw(raw),
        time=at or utcnow(),
        data=JobRejectedData(
            request_id=request_id or "",
            definition_id=fields.get("definition_id"),
            origin=origin,
            requested_by=fields.get("requested_by"),
            reason=_bounded(reason),
        ),
    )


def subject_for_raw(raw: bytes) -> str:
    """The job id when the message names a request id, else a name-based UUID of its bytes."""
    request_id = _readable_fields(raw).get("request_id")
    if request_id:
        return job_id_for_request(request_id)
    return str(uuid.uuid5(_RAW_NAMESPACE, hashlib.sha256(raw).hexdigest()))


def validation_reason(error: ValidationError, whole: str = "request") -> str:
    """Pydantic's errors as "field: problem" phrases, e.g. "request_id: field required".

    `whole` names the message itself, for errors that are about all of it (invalid JSON).
    """
    phrases = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or whole
        message = item["msg"]
        phrases.append(f"{location}: {message[:1].lower()}{message[1:]}")
    return "; ".join(phrases) or str(error)


def oversized_reason(size: int, limit: int) -> str:
    return f"request: {size} bytes, larger than the limit of {limit} bytes"


def _readable_fields(raw: bytes) -> dict[str, str]:
    """The string fields of a JSON object that identify a request, when the bytes hold one."""
    try:
        value: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        name: value[name][:200]
        for name in ("request_id", "definition_id", "requested_by")
        if isinstance(value.get(name), str) and value[name]
    }


def _bounded(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
