"""Loops a FastStream process runs beside its subscribers (the scheduler's ticks, retention,
the notifier's sweep for abandoned deliveries): started once the app has started, cancelled
when it stops, and never ended by one failed round."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from faststream import FastStream

logger = logging.getLogger(__name__)


def run_every(
    app: FastStream, step: Callable[[], Awaitable[object]], seconds: float, failure: str
) -> None:
    """Runs `step` every `seconds` while `app` runs; a round that raises is logged with
    `failure` and the next round comes on time, since the next one may well succeed."""
    tasks: list[asyncio.Task[None]] = []

    async def repeat() -> None:
        while True:
            try:
                await step()
            except Exception:
                logger.exception("%s; trying again in %.0f s", failure, seconds)
            await asyncio.sleep(seconds)

    @app.after_startup
    async def start() -> None:
        tasks.append(asyncio.create_task(repeat()))

    @app.on_shutdown
    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
