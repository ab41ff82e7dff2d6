"""The audit trail in MongoDB (`audit`): who did what to which job, when, and how it ended."""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from provisioning_common.envelope import utcnow
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

AUDIT = "audit"

logger = logging.getLogger(__name__)

# "pending": written before the action runs, settled to accepted or rejected once it has; an
# entry left pending is an action whose end could not be recorded (see api/deps.py).
Outcome = Literal["pending", "accepted", "rejected"]


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    role: str | None
    action: str
    outcome: Outcome
    status_code: int
    job_id: str | None = None
    target: str | None = None
    reason: str | None = None
    command_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_document(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "at": self.at,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "job_id": self.job_id,
            "target": self.target,
            "reason": self.reason,
            "command_id": self.command_id,
        }


class AuditLog:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._entries: AsyncCollection[dict[str, Any]] = db[AUDIT]

    async def ensure_indexes(self) -> None:
        await self._entries.create_index([("at", DESCENDING), ("_id", DESCENDING)], name="newest")
        await self._entries.create_index([("job_id", DESCENDING), ("at", DESCENDING)], name="job")

    async def record(self, entry: AuditEntry) -> None:
        await self._entries.insert_one(entry.to_document())
        self._log(entry)

    async def settle(self, entry: AuditEntry) -> None:
        """Write how the action of a pending entry ended (the same id)."""
        document = entry.to_document()
        await self._entries.update_one(
            {"_id": entry.id},
            {"$set": {k: v for k, v in document.items() if k not in ("_id", "at")}},
        )
        self._log(entry)

    def _log(self, entry: AuditEntry) -> None:
        logger.info(
            "audit: %s %s by %s: %s (%s)%s",
            entry.action,
            entry.job_id or entry.target or "",
            entry.actor,
            entry.outcome,
            entry.status_code,
            f": {entry.reason}" if entry.reason else "",
            extra={"job_id": entry.job_id} if entry.job_id else None,
        )
