"""Every message of provisioning.job-events is folded into its job instance, or dead-lettered."""

import logging
from typing import Protocol

from provisioning_common.events import (
    JobArchived,
    JobCanceled,
    JobCompleted,
    JobCreated,
    JobEvent,
    JobFailed,
    JobStarted,
    SequenceBlocked,
    ThresholdValidated,
    parse_job_event,
)
from provisioning_common.logs import current_job_id
from pydantic import ValidationError

from job_api.adapters.job_events import KafkaPosition
from job_api.domain.admission import validation_reason
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import DELETE, FoldResult

logger = logging.getLogger(__name__)
# Logged at INFO: what an operator follows a job by. Sequence steps and progress are DEBUG.
_MILESTONES = (
    JobCreated,
    JobStarted,
    SequenceBlocked,
    ThresholdValidated,
    JobCompleted,
    JobFailed,
    JobCanceled,
    JobArchived,
)


class JobInstanceWriter(Protocol):
    async def apply_fold(
        self, event: JobEvent, partition: int | None, offset: int | None
    ) -> FoldResult: ...


class DeadLetters(Protocol):
    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None: ...


async def project_job_event(
    event: JobEvent, partition: int | None, offset: int | None, *, store: JobInstanceWriter
) -> FoldResult:
    """Fold one event into the read model; safe to repeat (folded offsets are skipped)."""
    token = current_job_id.set(event.subject)
    try:
        result = await store.apply_fold(event, partition, offset)
        if result is DELETE:
            logger.info("job instance deleted (%s at %s:%s)", event.type, partition, offset)
        elif isinstance(result, JobInstance):
            logger.log(
                logging.INFO if isinstance(event, _MILESTONES) else logging.DEBUG,
                "folded %s at %s:%s: job %s",
                event.type,
                partition,
                offset,
                result.status,
            )
        return result
    finally:
        current_job_id.reset(token)


async def project_raw_event(
    raw: bytes, *, source: KafkaPosition, store: JobInstanceWriter, dead_letters: DeadLetters
) -> FoldResult:
    """One message as bytes: a message that is not a job event goes to the dead-letter topic."""
    try:
        event = parse_job_event(raw)
    except ValidationError as error:
        await dead_letters.dead_letter(
            raw, source=source, reason=f"not a job event: {validation_reason(error, 'message')}"
        )
        return None
    return await project_job_event(event, source.partition, source.offset, store=store)
