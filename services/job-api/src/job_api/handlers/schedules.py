"""Turns a definition's due firing into a job request, once, whichever scheduler replica sees
it first; a firing while the previous job of the definition is unfinished is recorded as
skipped instead."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from provisioning_common.definitions import JobDefinition
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.requests import JobRequest

from job_api.domain.schedules import due_firing, firing_request_id

logger = logging.getLogger(__name__)

SCHEDULER = "scheduler"
# A firing claimed this long ago and still not settled lost its scheduler: another finishes it.
UNSETTLED_AFTER = timedelta(seconds=60)


class FiringStore(Protocol):
    async def scheduled_definitions(self) -> list[JobDefinition]: ...
    async def state(self, definition_id: str, now: datetime) -> dict[str, Any]: ...
    async def advance(
        self, definition_id: str, last: datetime | None, firing: datetime
    ) -> bool: ...
    async def record_firing(self, firing: dict[str, Any]) -> None: ...
    async def settle(self, firing_id: str, status: str, **fields: Any) -> None: ...
    async def unsettled(self, claimed_before: datetime) -> list[dict[str, Any]]: ...
    async def unfinished_job(
        self, definition_id: str, other_than: str
    ) -> dict[str, Any] | None: ...


@dataclass
class Scheduler:
    store: FiringStore
    # Publishes the job request on provisioning.job-requests, as any upstream system would.
    request_job: Callable[[JobRequest], Awaitable[None]]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def tick(self) -> int:
        """Run every firing due now; returns how many this scheduler claimed."""
        now = self.clock()
        for firing in await self.store.unsettled(now - UNSETTLED_AFTER):
            logger.warning("finishing firing %s, left unsettled by its scheduler", firing["_id"])
            await self._run(firing)
        claimed = 0
        for definition in await self.store.scheduled_definitions():
            try:
                claimed += await self._fire(definition, now)
            except Exception:
                # One definition's trouble (a database hiccup) must not stop the others.
                logger.exception("schedule of %s: firing failed; trying next tick", definition.id)
        return claimed

    async def _fire(self, definition: JobDefinition, now: datetime) -> int:
        assert definition.schedule is not None
        state = await self.store.state(definition.id, now)
        last: datetime | None = state["last_firing"]
        due = due_firing(definition.schedule, last or state["since"], now)
        if due is None or not await self.store.advance(definition.id, last, due.at):
            return 0  # nothing due, or another scheduler claimed it
        firing = {
            "_id": firing_request_id(definition.id, due.at),
            "definition_id": definition.id,
            "definition_version": definition.version,
            "at": due.at,
            "missed": due.missed,
            "status": "claimed",
            "claimed_at": now,
        }
        await self.store.record_firing(firing)
        await self._run(firing)
        return 1

    async def _run(self, firing: dict[str, Any]) -> None:
        request_id: str = firing["_id"]
        job_id = job_id_for_request(request_id)
        busy = await self.store.unfinished_job(firing["definition_id"], other_than=job_id)
        if busy is not None:
            reason = f"job {busy['_id']} of this definition is {busy['status']}"
            logger.info("firing %s skipped: %s", request_id, reason)
            await self.store.settle(request_id, "skipped", reason=reason, settled_at=self.clock())
            return
        await self.request_job(
            JobRequest(
                request_id=request_id, definition_id=firing["definition_id"], requested_by=SCHEDULER
            )
        )
        missed = f" ({firing['missed']} missed firings not run)" if firing.get("missed") else ""
        logger.info("firing %s requested job %s%s", request_id, job_id, missed)
        await self.store.settle(request_id, "requested", job_id=job_id, settled_at=self.clock())
