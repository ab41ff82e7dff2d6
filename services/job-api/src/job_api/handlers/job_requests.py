"""Job requests from the API and from provisioning.job-requests become JobCreated or JobRejected."""

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import JobCreated, JobRejected
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.logs import current_job_id
from provisioning_common.requests import JobRequest, Origin
from pydantic import ValidationError

from job_api.adapters.job_events import EventTooLargeError, KafkaPosition, Published
from job_api.domain.admission import (
    accept_job_request,
    oversized_reason,
    reject_job_request,
    reject_malformed,
    subject_for_raw,
    validation_reason,
)
from job_api.domain.projection import fold

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


class DefinitionLookup(Protocol):
    async def get(self, definition_id: str) -> JobDefinition | None: ...


class JobInstanceIntake(Protocol):
    async def get(self, job_id: str) -> dict[str, Any] | None: ...

    async def insert_if_absent(self, doc: dict[str, Any]) -> bool: ...


class JobEventPublisher(Protocol):
    async def publish_event(self, event: Envelope) -> Published: ...

    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None: ...


@dataclass(frozen=True)
class DuplicateRequest:
    """The request id already names a job instance: that job is the answer, nothing is published."""

    job_id: str
    status: str


IntakeResult = JobCreated | JobRejected | DuplicateRequest


async def submit_job_request(
    request: JobRequest,
    *,
    origin: Origin = "api",
    definitions: DefinitionLookup,
    job_instances: JobInstanceIntake,
    publisher: JobEventPublisher,
) -> IntakeResult:
    """Publish JobCreated (or JobRejected) and store the QUEUED job instance at once.

    The API answers 202 for JobCreated and DuplicateRequest, and a 4xx with
    `result.data.reason` for JobRejected. The job instance is the fold of the published
    JobCreated at its real offset, so the projector finds it already folded.
    """
    job_id = job_id_for_request(request.request_id)
    token = current_job_id.set(job_id)
    try:
        existing = await job_instances.get(job_id)
        if existing is not None:
            logger.info(
                "request %r is job %s already: not created again", request.request_id, job_id
            )
            return DuplicateRequest(job_id=job_id, status=str(existing["status"]))
        definition = await definitions.get(request.definition_id)
        result = accept_job_request(request, origin, definition)
        try:
            published = await publisher.publish_event(result)
        except EventTooLargeError as error:
            # The inputs fit the request limit but not, with the definition, the broker's.
            result = reject_job_request(request, origin, f"request: too large to run ({error})")
            published = await publisher.publish_event(result)
        if isinstance(result, JobCreated):
            doc = fold(None, result, published.partition, published.offset)
            assert isinstance(doc, dict)
            await job_instances.insert_if_absent(doc)
            logger.info(
                "request %r from %s became job %s (definition %s v%d)",
                request.request_id,
                origin,
                job_id,
                result.data.definition.id,
                result.data.definition.version,
            )
        else:
            logger.warning(
                "request %r from %s rejected: %s", request.request_id, origin, result.data.reason
            )
        return result
    finally:
        current_job_id.reset(token)


async def intake_raw_request(
    raw: bytes,
    *,
    definitions: DefinitionLookup,
    job_instances: JobInstanceIntake,
    publisher: JobEventPublisher,
    source: KafkaPosition,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    origin: Origin = "kafka",
) -> IntakeResult:
    """One message of provisioning.job-requests, as bytes: never raises for a bad message.

    A message that is not a valid JobRequest is rejected (JobRejected on job-events, with the
    fields at fault) and kept on the requests' dead-letter topic.
    """
    if len(raw) > max_bytes:
        return await _reject_malformed(
            raw, oversized_reason(len(raw), max_bytes), origin, publisher, source
        )
    try:
        request = JobRequest.model_validate_json(raw)
    except ValidationError as error:
        return await _reject_malformed(raw, validation_reason(error), origin, publisher, source)
    return await submit_job_request(
        request,
        origin=origin,
        definitions=definitions,
        job_instances=job_instances,
        publisher=publisher,
    )


async def _reject_malformed(
    raw: bytes, reason: str, origin: Origin, publisher: JobEventPublisher, source: KafkaPosition
) -> JobRejected:
    token = current_job_id.set(subject_for_raw(raw))
    try:
        rejected = reject_malformed(raw, reason, origin)
        await publisher.publish_event(rejected)
        await publisher.dead_letter(raw, source=source, reason=reason)
        return rejected
    finally:
        current_job_id.reset(token)


# The intake's message table: the requests topic carries one message type, the plain JSON
# job request, so every message goes to intake_raw_request.
HANDLERS = {JobRequest: intake_raw_request}
