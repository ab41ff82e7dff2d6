"""The one way our services consume a topic: raw bytes in, our own parser, the malformed and the
unprocessable to the dead-letter topic with the reason, and the offset committed only after the
handler succeeded. Every consumer of the system (the intake, the projector, the runner's two and
the guard's) is one `subscribe_topic` call."""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from pydantic import ValidationError

from provisioning_common.envelope import Envelope
from provisioning_common.kafka import send_to_dead_letter
from provisioning_common.logs import current_job_id
from provisioning_common.metrics import MESSAGES_DEAD_LETTERED, MESSAGES_HANDLED
from provisioning_common.retrying import Attempts, RetryPolicy, describe

logger = logging.getLogger(__name__)

M = TypeVar("M")
E = TypeVar("E", bound=Envelope)

# A "not yet" (expected wait) is redelivered after this pause, without counting as a failure.
WAIT_PAUSE_SECONDS = 1.0
# ... but not for ever: a message still waiting after this long is dead-lettered. The runner
# stops its own waits sooner (30 s by the command's time); this bounds the case its clock can't.
MAX_WAIT_SECONDS = 120.0
# Failing messages remembered at once (one per stalled partition in practice).
_MAX_TRACKED = 1000


@dataclass(frozen=True)
class Received:
    """Where a consumed message came from: its dead letter names it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


async def kafka_record(message: StreamMessage[Any]) -> Any:
    """Hand the handler the Kafka record as it came: its bytes reach our own parser (a malformed
    message too), and its position names the message in a dead letter.

    The record comes as the decoded body, not as a `KafkaMessage` parameter of the handler:
    faststream resolves such a context parameter with a synchronous function, which
    fast_depends runs in a worker thread, one thread hop per message (faststream 0.7), which
    halved the events per second of a hop."""
    return message.raw_message


class _Tries:
    """The failures and waits of the messages being retried, by position, across redeliveries."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._attempts: OrderedDict[tuple[str, int, int], Attempts] = OrderedDict()
        self._waits: OrderedDict[tuple[str, int, int], float] = OrderedDict()

    def attempts(self, at: Received) -> Attempts:
        key = (at.topic, at.partition, at.offset)
        found = self._attempts.get(key)
        if found is None:
            found = Attempts(f"{at.topic}:{at.partition}:{at.offset}", self._policy, logger)
            self._attempts[key] = found
            while len(self._attempts) > _MAX_TRACKED:
                self._attempts.popitem(last=False)
        return found

    def waited(self, at: Received) -> tuple[float, bool]:
        """Seconds this message has waited so far, and whether this is its first wait."""
        key = (at.topic, at.partition, at.offset)
        now = time.monotonic()
        first = self._waits.setdefault(key, now)
        while len(self._waits) > _MAX_TRACKED:
            self._waits.popitem(last=False)
        return now - first, first == now

    def failed_before(self, at: Received) -> Attempts | None:
        """The failures of this message so far, if it failed before (without tracking it)."""
        return self._attempts.get((at.topic, at.partition, at.offset))

    def forget(self, at: Received) -> None:
        key = (at.topic, at.partition, at.offset)
        self._attempts.pop(key, None)
        self._waits.pop(key, None)


@dataclass(frozen=True)
class TopicRoute(Generic[M]):
    """How one topic of a consumer is read: its parser, its handler, its expected waits."""

    parse: Callable[[bytes], M]
    handle: Callable[[M, Received], Awaitable[bool]]
    subject: Callable[[M], str | None] = lambda _: None
    expected_waits: tuple[type[Exception], ...] = ()
    max_wait_seconds: float = MAX_WAIT_SECONDS


def subscribe_topic(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    parse: Callable[[bytes], M],
    handle: Callable[[M, Received], Awaitable[bool]],
    title: str,
    description: str,
    subject: Callable[[M], str | None] = lambda _: None,
    policy: RetryPolicy | None = None,
    expected_waits: tuple[type[Exception], ...] = (),
    max_wait_seconds: float = MAX_WAIT_SECONDS,
    **options: Any,
) -> DefaultSubscriber:
    """Subscribe `handle` to `topic`; it returns whether the message meant something to it.

    - `parse` raising (a ValidationError, say): the message is dead-lettered at once.
    - `handle` raising a transient error (database or broker away): the message is redelivered
      after a back-off, for as long as it takes.
    - `handle` raising anything else: redelivered after a back-off, and dead-lettered with the
      reason after `policy.give_up_after` failures; the consumer then moves on.
    - `handle` raising one of `expected_waits` ("not yet"): redelivered every second, without
      a traceback, for at most `max_wait_seconds`, then dead-lettered.
    `options` go to faststream's subscriber (e.g. max_partition_fetch_bytes).
    """
    route = TopicRoute(parse, handle, subject, expected_waits, max_wait_seconds)
    return subscribe_topics(
        broker,
        routes={topic: route},
        group_id=group_id,
        title=title,
        description=description,
        policy=policy,
        **options,
    )


def subscribe_topics(
    broker: KafkaBroker,
    *,
    routes: Mapping[str, TopicRoute[Any]],
    group_id: str,
    title: str,
    description: str,
    policy: RetryPolicy | None = None,
    **options: Any,
) -> DefaultSubscriber:
    """One consumer for several topics, each read by its own route, with `subscribe_topic`'s rules.

    One consumer, not one per topic, so that a group's members get the same partition numbers
    of every topic (with `RangePartitionAssignor` and equal partition counts): the messages of one
    key, on whichever topic, reach one member. `options` go to faststream's subscriber
    (`listener=` for a rebalance listener, `partition_assignment_strategy=`, …).
    """
    tries = _Tries(policy or RetryPolicy())

    async def dead_letter(topic: str, body: bytes, at: Received, reason: str) -> None:
        await send_to_dead_letter(
            broker,
            topic=topic,
            raw=body,
            key=at.key,
            partition=at.partition,
            offset=at.offset,
            reason=reason,
        )
        MESSAGES_DEAD_LETTERED.labels(topic).inc()
        tries.forget(at)

    # Named by hand: with **options mypy cannot pick the overload faststream's call matches.
    subscriber = cast(
        "DefaultSubscriber",
        broker.subscriber(
            *routes,
            group_id=group_id,
            auto_offset_reset="earliest",
            # NACK_ON_ERROR, not ACK: ACK commits even when the handler raised, losing the message.
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=kafka_record,
            title=title,
            description=description,
            **options,
        ),
    )

    @subscriber
    async def on_message(record: Any) -> None:
        if not isinstance(record, ConsumerRecord):  # pragma: no cover - not a batch subscriber
            raise TypeError(f"a Kafka record was expected, not {type(record).__name__}")
        body: bytes = record.value or b""  # a tombstone (no value) reaches the parser as b""
        at = Received(record.topic, record.partition, record.offset, record.key)
        route = routes[record.topic]
        try:
            parsed = route.parse(body)
        except ValidationError as error:
            await dead_letter(at.topic, body, at, str(error))
            return
        except Exception as error:
            # Not a transient failure: parsing the same bytes again fails the same way.
            await dead_letter(at.topic, body, at, f"could not be parsed: {describe(error)}")
            return
        token = current_job_id.set(route.subject(parsed))
        try:
            await _handle_once(route, parsed, body, at)
        finally:
            current_job_id.reset(token)

    async def _handle_once(route: TopicRoute[Any], parsed: Any, body: bytes, at: Received) -> None:
        try:
            handled = await route.handle(parsed, at)
        except route.expected_waits as waiting:
            waited, first = tries.waited(at)
            if waited >= route.max_wait_seconds:
                reason = f"still waiting after {waited:.1f}s: {waiting}"
                await dead_letter(at.topic, body, at, reason)
                return
            if first:
                logger.info("%s; redelivered every %ss", waiting, WAIT_PAUSE_SECONDS)
            await asyncio.sleep(WAIT_PAUSE_SECONDS)
            # NackMessage: seek back without faststream logging the error a second time.
            raise NackMessage() from waiting
        except Exception as error:
            delay = tries.attempts(at).failed(error)
            if delay is None:
                reason = f"could not be handled: {tries.attempts(at).reason}"
                await dead_letter(at.topic, body, at, reason)
                return
            await asyncio.sleep(delay)
            raise NackMessage() from error
        failed_before = tries.failed_before(at)
        if failed_before is not None and failed_before.failures:
            logger.info("%s handled after %d failures", failed_before.what, failed_before.failures)
        tries.forget(at)
        MESSAGES_HANDLED.labels(at.topic, "acted" if handled else "ignored").inc()
        if handled:
            logger.info("handled %s (offset %s)", _kind(parsed), at.offset)

    return subscriber


def envelope_route(
    parse: Callable[[bytes], E],
    handle: Callable[[E], Awaitable[bool]],
    expected_waits: tuple[type[Exception], ...] = (),
) -> TopicRoute[E]:
    """The route of a topic of CloudEvents envelopes (job events, commands): subject = job id."""

    async def on_envelope(envelope: E, _: Received) -> bool:
        return await handle(envelope)

    return TopicRoute(
        parse=parse,
        handle=on_envelope,
        subject=lambda envelope: envelope.subject,
        expected_waits=expected_waits,
    )


def subscribe_envelopes(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    parse: Callable[[bytes], E],
    handle: Callable[[E], Awaitable[bool]],
    title: str,
    description: str,
    policy: RetryPolicy | None = None,
    expected_waits: tuple[type[Exception], ...] = (),
    **options: Any,
) -> DefaultSubscriber:
    """`subscribe_topic` for a topic of CloudEvents envelopes (job events, commands).

    `options` go to faststream's subscriber (e.g. KafkaSettings.consumer_params())."""
    return subscribe_topics(
        broker,
        routes={topic: envelope_route(parse, handle, expected_waits)},
        group_id=group_id,
        title=title,
        description=description,
        policy=policy,
        **options,
    )


def _kind(parsed: object) -> str:
    return parsed.type if isinstance(parsed, Envelope) else type(parsed).__name__


__all__ = [
    "Received",
    "RetryPolicy",
    "TopicRoute",
    "describe",
    "envelope_route",
    "subscribe_envelopes",
    "subscribe_topic",
    "subscribe_topics",
]
