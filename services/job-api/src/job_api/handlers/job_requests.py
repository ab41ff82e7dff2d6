"""Job requests from the API and from provisioning.job-requests become JobCreated or JobRejected."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import JobCreated, JobRejected, RevertOf
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.logs import current_job_id
from provisioning_common.requests import JobRequest, Origin
from pydantic import ValidationError

from job_api.adapters.job_events import EventTooLargeError, KafkaPosition, Published
from job_api.domain.admission import (
    HandledRequest,
    accept_job_request,
    oversized_reason,
    reject_job_request,
    reject_malformed,
    subject_for_raw,
    validation_reason,
)
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import fold, stored_time

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


class DefinitionLookup(Protocol):
    async def get(self, definition_id: str) -> JobDefinition | None: ...


class JobInstanceIntake(Protocol):
    """The read model and the request ledger (adapters.request_ledger.IntakeRecords)."""

    async def get(self, job_id: str) -> JobInstance | None: ...

    async def insert_if_absent(self, doc: JobInstance) -> bool: ...

    async def handled_request(self, request_id: str, job_id: str) -> HandledRequest | None: ...

    async def record_request(self, request_id: str, job_id: str, at: datetime) -> bool: ...

    async def request_published(self, request_id: str) -> None: ...

    async def forget_request(self, request_id: str) -> None: ...


class JobEventPublisher(Protocol):
    async def publish_event(self, event: Envelope) -> Published: ...

    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None: ...


@dataclass(frozen=True)
class DuplicateRequest:
    """The request id already names a job instance: that job is the answer, nothing is published.

    `status` is None while the read model does not hold the job (it is being rebuilt).
    """

    job_id: str
    status: str | None


@dataclass(frozen=True)
class RequestOfDeletedJob:
    """The request id names a job that was deleted: refused (409 over HTTP), never run again.

    `rejected` is the JobRejected published with the reason, as for any refused request.
    """

    rejected: JobRejected

    @property
    def reason(self) -> str:
        return self.rejected.data.reason


IntakeResult = JobCreated | JobRejected | DuplicateRequest | RequestOfDeletedJob


async def submit_job_request(
    request: JobRequest,
    *,
    origin: Origin = "api",
    definitions: DefinitionLookup,
    job_instances: JobInstanceIntake,
    publisher: JobEventPublisher,
    reverts: RevertOf | None = None,
) -> IntakeResult:
    """Publish JobCreated (or JobRejected) and store the QUEUED job instance at once.

    The API answers 202 for JobCreated and DuplicateRequest, a 4xx with
    `result.data.reason` for JobRejected, and 409 for RequestOfDeletedJob. The job instance
    is the fold of the published JobCreated at its real offset, so the projector finds it
    already folded.
    """
    job_id = job_id_for_request(request.request_id)
    token = current_job_id.set(job_id)
    try:
        # Decided from the request ledger, not from the read model alone: the read model
        # forgets deleted jobs and is empty during a rebuild, and answering "new" there
        # published a JobCreated that the runner ignores, leaving a job QUEUED for ever.
        handled = await job_instances.handled_request(request.request_id, job_id)
        if handled is not None and handled.deleted:
            rejected = reject_job_request(request, origin, handled.deleted_reason())
            await publisher.publish_event(rejected)
            logger.warning("request %r refused: %s", request.request_id, rejected.data.reason)
            return RequestOfDeletedJob(rejected=rejected)
        if handled is not None and handled.published:
            return await _duplicate(request, job_id, job_instances)
        definition = await definitions.get(request.definition_id)
        result = accept_job_request(request, origin, definition, reverts=reverts)
        recorded = handled is not None or not isinstance(result, JobCreated)
        if not recorded and not await job_instances.record_request(
            request.request_id, job_id, stored_time(result.time)
        ):
            # The same request is being taken in elsewhere (the API and Kafka at once).
            return await _duplicate(request, job_id, job_instances)
        try:
            published = await publisher.publish_event(result)
        except EventTooLargeError as error:
            # The inputs fit the request limit but not, with the definition, the broker's.
            await job_instances.forget_request(request.request_id)
            result = reject_job_request(request, origin, f"request: too large to run ({error})")
            published = await publisher.publish_event(result)
        if isinstance(result, JobCreated):
            await job_instances.request_published(request.request_id)
            doc = fold(None, result, published.partition, published.offset)
            assert isinstance(doc, JobInstance)
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
            if handled is not None:
                # Recorded, never published, and now refused (its definition went meanwhile).
                await job_instances.forget_request(request.request_id)
            logger.warning(
                "request %r from %s rejected: %s", request.request_id, origin, result.data.reason
            )
        return result
    finally:
        current_job_id.reset(token)


async def _duplicate(
    request: JobRequest, job_id: str, job_instances: JobInstanceIntake
) -> DuplicateRequest:
    existing = await job_instances.get(job_id)
    logger.info("request %r is job %s already: not created again", request.request_id, job_id)
    return DuplicateRequest(
        job_id=job_id, status=None if existing is None else str(existing.status)
    )


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
