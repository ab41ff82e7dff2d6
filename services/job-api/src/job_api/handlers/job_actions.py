"""An operator's actions on one job instance: validate, cancel, restart, archive, unarchive, delete.

Each checks the job instance's status against the rule of `job_api.domain.job_actions`, then
publishes the command for the sequence runner (validate, cancel, restart) or changes the read
model at once and publishes the event (archive, unarchive, delete). The routes translate the
errors below into 404, 409 and 503.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from provisioning_common.envelope import utcnow
from provisioning_common.logs import current_job_id
from provisioning_common.statuses import JobStatus

from job_api.domain.job_actions import JobAction, refusal
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import stored_time

logger = logging.getLogger(__name__)


class JobNotFoundError(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job instance with id {job_id}")


class ActionRefusedError(Exception):
    """The job instance's status (or plan) does not allow the action: a 409 over HTTP."""


class NotPublishedError(Exception):
    """Kafka did not take the event, and the read model was put back: a 503 over HTTP."""


class JobInstances(Protocol):
    async def get(self, job_id: str) -> JobInstance | None: ...

    async def set_archived(self, job_id: str, archived: bool, by: str, at: datetime) -> bool: ...

    async def restore_archived(self, before: JobInstance) -> None: ...

    async def delete(self, job_id: str) -> bool: ...

    async def insert_if_absent(self, doc: JobInstance) -> bool: ...


class Commands(Protocol):
    async def validate_threshold(
        self,
        job_id: str,
        requested_by: str,
        plan_id: str | None = None,
        expected_status: JobStatus | None = None,
    ) -> str: ...

    async def cancel_job(
        self, job_id: str, requested_by: str, expected_status: JobStatus | None = None
    ) -> str: ...

    async def restart_job(
        self, job_id: str, requested_by: str, expected_status: JobStatus | None = None
    ) -> str: ...

    async def job_archived(
        self, job_id: str, archived_by: str, *, archived: bool, at: datetime
    ) -> None: ...

    async def job_deleted(self, job_id: str, deleted_by: str) -> None: ...


class DeletedRequests(Protocol):
    async def mark_deleted(self, job_id: str, by: str | None, at: datetime) -> None: ...


class JobActions:
    """The operator's actions, over the read model, the command publisher and the ledger."""

    def __init__(
        self, job_instances: JobInstances, commands: Commands, requests: DeletedRequests
    ) -> None:
        self._job_instances = job_instances
        self._commands = commands
        self._requests = requests

    async def validate_threshold(self, job_id: str, by: str, seen_plan_id: str | None) -> str:
        """Send ValidateThreshold naming the blocked plan; the command id.

        The plan is always named, taken from the job instance this answer is read from: without
        it the runner would approve whatever plan the job is blocked on when the command arrives,
        which may be a re-plan (after someone else's restart) the operator never saw.
        `seen_plan_id`, the plan the operator looked at, must be that plan.
        """
        with about(job_id):
            doc = await self._allowing(job_id, JobAction.VALIDATE)
            plan_id = doc.blocked_plan_id()
            if plan_id is None:
                raise ActionRefusedError(
                    f"job {job_id} is {doc.status} but the read model names no blocked plan to "
                    "approve yet; read the job again and validate the plan it shows"
                )
            if seen_plan_id is not None and seen_plan_id != plan_id:
                raise ActionRefusedError(
                    f"job {job_id} is blocked on plan {plan_id}, not on plan {seen_plan_id}; "
                    "look at the current plan and validate again"
                )
            return await self._commands.validate_threshold(
                job_id, by, plan_id, expected_status=JobStatus(doc.status)
            )

    async def cancel_job(self, job_id: str, by: str) -> str:
        """Send CancelJob for a job awaiting a decision; the command id."""
        with about(job_id):
            doc = await self._allowing(job_id, JobAction.CANCEL)
            return await self._commands.cancel_job(
                job_id, by, expected_status=JobStatus(doc.status)
            )

    async def restart_job(self, job_id: str, by: str) -> str:
        """Send RestartJob; the command id."""
        with about(job_id):
            doc = await self._allowing(job_id, JobAction.RESTART)
            return await self._commands.restart_job(
                job_id, by, expected_status=JobStatus(doc.status)
            )

    async def set_archived(self, job_id: str, by: str, *, archived: bool) -> JobInstance:
        """Archive or unarchive a finished job in the read model, then publish JobArchived."""
        action = JobAction.ARCHIVE if archived else JobAction.UNARCHIVE
        with about(job_id):
            before = await self._allowing(job_id, action)
            at = stored_time(utcnow())
            # Conditional on the status, so a job restarted meanwhile is refused, not archived.
            if not await self._job_instances.set_archived(job_id, archived, by, at):
                await self._allowing(job_id, action)
                raise _changed_meanwhile(job_id)
            try:
                await self._commands.job_archived(job_id, by, archived=archived, at=at)
            except Exception as error:
                # Without the event the projection and subscribers would disagree: put back what
                # was (archiving an archived job must not unarchive it).
                await self._job_instances.restore_archived(before)
                logger.exception("could not publish JobArchived; %s undone", action)
                raise NotPublishedError(
                    "Kafka did not take the change; nothing changed, retry"
                ) from error
            after = await self._job_instances.get(job_id)
            if after is None:
                raise JobNotFoundError(job_id)
            return after

    async def delete_job(self, job_id: str, by: str) -> None:
        """Delete a finished job from the read model, publish JobDeleted, note it in the ledger.

        The request ledger keeps the job's request id: the same request sent again is refused
        with the deletion as its reason instead of running the job a second time.
        """
        with about(job_id):
            doc = await self._allowing(job_id, JobAction.DELETE)
            if not await self._job_instances.delete(job_id):
                await self._allowing(job_id, JobAction.DELETE)
                raise _changed_meanwhile(job_id)
            try:
                await self._commands.job_deleted(job_id, by)
            except Exception as error:
                await self._job_instances.insert_if_absent(doc)
                logger.exception("could not publish JobDeleted; the job instance is restored")
                raise NotPublishedError(
                    "Kafka did not take the deletion; nothing changed, retry"
                ) from error
            # After the event: a crash before this line is caught up from the projector's tombstone.
            await self._requests.mark_deleted(job_id, by, stored_time(utcnow()))

    async def _allowing(self, job_id: str, action: JobAction) -> JobInstance:
        """The job instance, when its status allows `action`."""
        doc = await self._job_instances.get(job_id)
        if doc is None:
            raise JobNotFoundError(job_id)
        refused = refusal(job_id, JobStatus(doc.status), action)
        if refused is not None:
            raise ActionRefusedError(refused)
        return doc


def _changed_meanwhile(job_id: str) -> ActionRefusedError:
    return ActionRefusedError(f"job {job_id} changed while this call ran; read it and retry")


@contextmanager
def about(job_id: str) -> Iterator[None]:
    """Every log line while acting on one job carries its id."""
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)
