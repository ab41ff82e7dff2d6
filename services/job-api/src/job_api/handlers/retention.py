"""The system's own housekeeping: finished jobs archived after N days, archived jobs (and, by
the runner, their plans) deleted after M days, per definition or by the system default; each
action taken through the operators' own code path and audited as the system's."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from provisioning_common.definition_options import Retention
from provisioning_common.statuses import FINISHED_JOB_STATUSES
from pymongo.asynchronous.database import AsyncDatabase

from job_api.adapters.audit import AuditEntry, AuditLog
from job_api.adapters.definitions import DEFINITIONS_COLLECTION
from job_api.adapters.job_instances import JOB_INSTANCES_COLLECTION
from job_api.handlers.job_actions import ActionRefusedError, JobActions, JobNotFoundError

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:retention"
# Jobs handled per pass: a first pass over years of history spreads over several.
BATCH = 200
_FINISHED = sorted(s.value for s in FINISHED_JOB_STATUSES)


@dataclass
class RetentionSweep:
    db: AsyncDatabase[dict[str, Any]]
    actions: JobActions
    audit: AuditLog
    default: Retention
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def run(self) -> tuple[int, int]:
        """Archive, then delete, what is due; (archived, deleted)."""
        now = self.clock()
        policies = await self._policies()
        # The shortest period of any policy bounds the query; each job is then held to its own.
        soonest_archive = min(p.archive_after_days for p in [self.default, *policies.values()])
        soonest_delete = min(p.delete_after_days for p in [self.default, *policies.values()])
        archived = deleted = 0
        cursor = (
            self.db[JOB_INSTANCES_COLLECTION]
            .find(
                {
                    "status": {"$in": _FINISHED},
                    "archived": False,
                    "ended_at": {"$lt": now - timedelta(days=soonest_archive)},
                },
                {"_id": 1, "definition_id": 1, "ended_at": 1},
            )
            .limit(BATCH)
        )
        for job in [doc async for doc in cursor]:
            days = policies.get(job["definition_id"], self.default).archive_after_days
            if job["ended_at"] < now - timedelta(days=days):
                reason = f"ended more than {days} days ago"
                archived += await self._act("archive", job["_id"], reason)
        cursor = (
            self.db[JOB_INSTANCES_COLLECTION]
            .find(
                {"archived": True, "archived_at": {"$lt": now - timedelta(days=soonest_delete)}},
                {"_id": 1, "definition_id": 1, "archived_at": 1},
            )
            .limit(BATCH)
        )
        for job in [doc async for doc in cursor]:
            days = policies.get(job["definition_id"], self.default).delete_after_days
            if job["archived_at"] < now - timedelta(days=days):
                reason = f"archived more than {days} days ago"
                deleted += await self._act("delete", job["_id"], reason)
        if archived or deleted:
            logger.info("retention: %d jobs archived, %d deleted", archived, deleted)
        return archived, deleted

    async def _policies(self) -> dict[str, Retention]:
        cursor = self.db[DEFINITIONS_COLLECTION].find(
            {"retention": {"$ne": None}}, {"_id": 1, "retention": 1}
        )
        return {doc["_id"]: Retention.model_validate(doc["retention"]) async for doc in cursor}

    async def _act(self, action: str, job_id: str, reason: str) -> int:
        try:
            if action == "archive":
                await self.actions.set_archived(job_id, SYSTEM_ACTOR, archived=True)
            else:
                await self.actions.delete_job(job_id, SYSTEM_ACTOR)
        except (ActionRefusedError, JobNotFoundError) as refused:
            # Another scheduler replica got there first, or an operator acted meanwhile.
            logger.info("retention: %s of job %s not done: %s", action, job_id, refused)
            return 0
        await self.audit.record(
            AuditEntry(
                actor=SYSTEM_ACTOR,
                role="system",
                action=action,
                outcome="accepted",
                status_code=200 if action == "archive" else 204,
                job_id=job_id,
                reason=f"retention: {reason}",
            )
        )
        return 1
