"""Publishes what an operator decided: commands for the sequence runner, archive/delete events."""

import logging
import uuid
from datetime import datetime

from faststream.kafka import KafkaBroker
from provisioning_common.commands import (
    CancelJob,
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.envelope import Envelope
from provisioning_common.events import JobArchived, JobArchivedData, JobDeleted, JobDeletedData
from provisioning_common.kafka import publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.statuses import JobStatus
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS

SOURCE = "/provisioning/job-api"

logger = logging.getLogger(__name__)


class CommandPublisher:
    """Every message is keyed by the job id, so the runner sees one job's messages in order."""

    def __init__(self, broker: KafkaBroker, kafka: KafkaSettings) -> None:
        self._broker = broker
        self._commands_topic = kafka.topic(JOB_COMMANDS)
        self._events_topic = kafka.topic(JOB_EVENTS)

    # `expected_status` is the status the operator acted on: the runner refuses a command whose
    # job has moved on since, which is what makes two operators racing end with one winner.
    async def validate_threshold(
        self,
        job_id: str,
        requested_by: str,
        plan_id: str | None = None,
        expected_status: JobStatus | None = None,
    ) -> str:
        command_id = _new_command_id()
        data = ValidateThresholdData(
            command_id=command_id,
            requested_by=requested_by,
            plan_id=plan_id,
            expected_status=expected_status,
        )
        await self._command(ValidateThreshold(source=SOURCE, subject=job_id, data=data))
        return command_id

    async def cancel_job(
        self, job_id: str, requested_by: str, expected_status: JobStatus | None = None
    ) -> str:
        command_id = _new_command_id()
        data = CommandData(
            command_id=command_id, requested_by=requested_by, expected_status=expected_status
        )
        await self._command(CancelJob(source=SOURCE, subject=job_id, data=data))
        return command_id

    async def restart_job(
        self, job_id: str, requested_by: str, expected_status: JobStatus | None = None
    ) -> str:
        command_id = _new_command_id()
        data = CommandData(
            command_id=command_id, requested_by=requested_by, expected_status=expected_status
        )
        await self._command(RestartJob(source=SOURCE, subject=job_id, data=data))
        return command_id

    async def job_archived(
        self, job_id: str, archived_by: str, *, archived: bool, at: datetime
    ) -> None:
        """`at` is the time already written to the read model, so the projector writes the same."""
        data = JobArchivedData(archived_by=archived_by, archived=archived)
        await self._event(JobArchived(source=SOURCE, subject=job_id, time=at, data=data))

    async def job_deleted(self, job_id: str, deleted_by: str) -> None:
        data = JobDeletedData(deleted_by=deleted_by)
        await self._event(JobDeleted(source=SOURCE, subject=job_id, data=data))

    async def _command(self, command: Envelope) -> None:
        await publish_envelope(self._broker, self._commands_topic, command)
        logger.info(
            "published %s on %s",
            command.type,
            self._commands_topic,
            extra={"job_id": command.subject},
        )

    async def _event(self, event: Envelope) -> None:
        await publish_envelope(self._broker, self._events_topic, event)
        logger.info(
            "published %s on %s", event.type, self._events_topic, extra={"job_id": event.subject}
        )


def _new_command_id() -> str:
    return str(uuid.uuid4())
