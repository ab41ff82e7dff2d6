"""The one retry pattern of the system: exponential back-off with a cap, transient errors (the
database or the broker away) waited out for as long as it takes, any other error tried a few
times and then given up, and the failures logged with one traceback, then short warnings."""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """True for an outage, which passes by itself; False for an error that repeats as it is.

    ConnectionFailure covers MongoDB's AutoReconnect, NetworkTimeout and
    ServerSelectionTimeoutError; aiokafka marks its own passing errors `retriable`.
    """
    if isinstance(error, ConnectionFailure | KafkaConnectionError | KafkaTimeoutError):
        return True
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    return isinstance(error, ConnectionError | TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to pause before each retry, and when a failure that is not an outage wins."""

    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 30.0
    # Failures that are not transient, of one operation (one message), before giving up.
    give_up_after: int = 5
    # Transient failures before giving up; None (consumers): wait the outage out, however long.
    transient_give_up_after: int | None = None
    # A repeated failure is logged at most this often (the first one always, with its traceback).
    log_every_seconds: float = 10.0

    def delay(self, failures: int) -> float:
        """The pause after the `failures`-th failure in a row (1 for the first)."""
        # The exponent capped: after a long outage 2.0 ** failures would overflow a float.
        doublings = min(max(failures - 1, 0), 64)
        return min(self.first_delay_seconds * 2.0**doublings, self.max_delay_seconds)


@dataclass
class Attempts:
    """The failures of one operation so far; it says whether to try again and how long to wait.

    Kept by the caller across tries, which may be redeliveries of one Kafka message.
    """

    what: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    monotonic: Callable[[], float] = time.monotonic
    failures: int = 0
    permanent_failures: int = 0
    last_error: BaseException | None = None
    _last_logged: float = -math.inf
    _not_logged: int = 0
    _kinds_logged: set[type[BaseException]] = field(default_factory=set)

    def failed(self, error: BaseException) -> float | None:
        """Count `error`; the pause before the next try, or None when it is time to give up."""
        self.failures += 1
        self.last_error = error
        transient = is_transient(error)
        if not transient:
            self.permanent_failures += 1
        limit = self.policy.transient_give_up_after
        if self.permanent_failures >= self.policy.give_up_after or (
            transient and limit is not None and self.failures - self.permanent_failures >= limit
        ):
            self.logger.error(
                "%s failed %d times (%s); giving up", self.what, self.failures, describe(error)
            )
            return None
        delay = self.policy.delay(self.failures)
        self._log(error, transient, delay)
        return delay

    @property
    def reason(self) -> str:
        """Why we gave up, for the dead letter and the operator."""
        assert self.last_error is not None
        return f"failed {self.failures} times, last with {describe(self.last_error)}"

    def _log(self, error: BaseException, transient: bool, delay: float) -> None:
        now = self.monotonic()
        first_of_its_kind = type(error) not in self._kinds_logged
        if not first_of_its_kind and now - self._last_logged < self.policy.log_every_seconds:
            self._not_logged += 1
            return
        since = f", {self._not_logged} more failures not logged" if self._not_logged else ""
        self.logger.warning(
            "%s failed (%s; %d in a row%s); trying again in %.1fs",
            self.what,
            describe(error),
            self.failures,
            since,
            delay,
            # One traceback per kind of failure: an outage needs none, a bug needs one.
            exc_info=error if first_of_its_kind and not transient else None,
        )
        self._kinds_logged.add(type(error))
        self._last_logged = now
        self._not_logged = 0


class GaveUpError(Exception):
    """An operation failed more often than its policy allows; the last error is the cause."""


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    logger: logging.Logger | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `operation` until it succeeds; raises GaveUpError when a non-transient failure has
    repeated `policy.give_up_after` times. Transient failures never give up."""
    attempts = Attempts(what, policy or RetryPolicy(), logger or logging.getLogger(__name__))
    while True:
        try:
            return await operation()
        except Exception as error:
            delay = attempts.failed(error)
            if delay is None:
                raise GaveUpError(f"{what}: {attempts.reason}") from error
        await sleep(delay)


def describe(error: BaseException) -> str:
    """The error in one short line: its type and the start of its message."""
    text = str(error)
    if len(text) > 500:
        text = f"{text[:500]}…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
