"""Progress of a long sequence, published at a bounded rate so operators can watch it."""

import logging
import time
from collections.abc import Callable
from typing import Literal

from provisioning_common.events import SequenceProgress, SequenceProgressData

from sequence_runner.domain.transitions import RUNNER_SOURCE
from sequence_runner.handlers.ports import EventPublisher

logger = logging.getLogger(__name__)


class ProgressReporter:
    """At most one SequenceProgress per interval, and a last one if the phase took longer."""

    def __init__(
        self,
        publisher: EventPublisher,
        *,
        job_id: str,
        index: int,
        phase: Literal["planning", "applying"],
        interval_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._job_id = job_id
        self._index = index
        self._phase: Literal["planning", "applying"] = phase
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._started = monotonic()
        self._last = self._started

    async def tick(self, done: int, total: int | None = None) -> None:
        now = self._monotonic()
        if now - self._last >= self._interval:
            self._last = now
            await self._publish(done, total)

    async def finish(self, done: int, total: int | None = None) -> None:
        if self._monotonic() - self._started >= self._interval:
            await self._publish(done, total)

    async def _publish(self, done: int, total: int | None) -> None:
        event = SequenceProgress(
            source=RUNNER_SOURCE,
            subject=self._job_id,
            data=SequenceProgressData(index=self._index, phase=self._phase, done=done, total=total),
        )
        try:
            await self._publisher.publish(event)
        except Exception:
            # Progress is a courtesy to the operator: losing one never stops the sequence.
            logger.warning("progress of sequence %s not published", self._index, exc_info=True)
