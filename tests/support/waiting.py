"""Polling with a deadline, so tests wait for what they expect instead of sleeping."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    # A deadline, not a cancellation scope: the failure message names what never happened.
    timeout: float = 30.0,  # noqa: ASYNC109
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def wait_until(
    probe: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> None:
    """The blocking twin of `eventually`, for fixtures that start processes."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
