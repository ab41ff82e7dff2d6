"""Progress of a long sequence, published at a bounded rate so operators can watch it.

Best effort: an event is handed to a background sender and the planning or applying goes on at
once. While the broker is slow or away, at most one progress event is in flight (for at most
`publish_timeout_seconds`) and only the newest waiting one is kept; the others are dropped.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from provisioning_common.events import SequenceProgress, SequenceProgressData

from sequence_runner.domain.transitions import RUNNER_SOURCE
from sequence_runner.handlers.ports import EventPublisher

logger = logging.getLogger(__name__)

DEFAULT_PUBLISH_TIMEOUT_SECONDS = 5.0


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
        publish_timeout_seconds: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        self._publisher = publisher
        self._job_id = job_id
        self._index = index
        self._phase: Literal["planning", "applying"] = phase
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._timeout = publish_timeout_seconds
        self._started = monotonic()
        self._last = self._started
        self._waiting: SequenceProgress | None = None
        self._sender: asyncio.Task[None] | None = None
        self._failures = 0

    async def tick(self, done: int, total: int | None = None) -> None:
        now = self._monotonic()
        if now - self._last >= self._interval:
            self._last = now
            await self._offer(done, total)

    async def finish(self, done: int, total: int | None = None) -> None:
        if self._monotonic() - self._started >= self._interval:
            await self._offer(done, total)

    async def _offer(self, done: int, total: int | None) -> None:
        # A waiting event not sent yet is replaced: the newer one says more.
        self._waiting = SequenceProgress(
            source=RUNNER_SOURCE,
            subject=self._job_id,
            data=SequenceProgressData(index=self._index, phase=self._phase, done=done, total=total),
        )
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(
                self._send_waiting(), name=f"progress-{self._job_id}-{self._index}"
            )
        # One turn of the loop: a broker that answers at once gets the event now, in order.
        await asyncio.sleep(0)

    async def _send_waiting(self) -> None:
        while self._waiting is not None:
            event, self._waiting = self._waiting, None
            try:
                async with asyncio.timeout(self._timeout):
                    await self._publisher.publish(event)
            except Exception as error:
                # Progress is a courtesy to the operator: losing one never stops the sequence.
                self._failures += 1
                if self._failures == 1:
                    logger.warning(
                        "progress of sequence %s not published (%s: %s); later ones may be "
                        "dropped too while the broker does not answer",
                        self._index,
                        type(error).__name__,
                        error,
                    )
