"""The guard's message handlers: a decision on every planned sequence, nothing else."""

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    THRESHOLD_GUARD_SOURCE,
    JobEvent,
    SequenceBlocked,
    SequenceBlockedData,
    SequencePlanned,
    SequenceReleased,
    SequenceReleasedData,
)

from threshold_guard.domain.rule import Blocked, evaluate
from threshold_guard.handlers.ports import EventPublisher

GUARD_SOURCE = THRESHOLD_GUARD_SOURCE
_DECISION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:provisioning:threshold-decision")


def decide(planned: SequencePlanned) -> SequenceReleased | SequenceBlocked:
    """The decision event for one planned sequence, the same every time it is asked."""
    data = planned.data
    # Derived from the planned event, so a replayed plan yields the very same decision event.
    event_id = str(uuid5(_DECISION_NAMESPACE, planned.id))
    decision = evaluate(data.counts, data.thresholds, data.approval)
    if isinstance(decision, Blocked):
        return SequenceBlocked(
            id=event_id,
            source=GUARD_SOURCE,
            subject=planned.subject,
            data=SequenceBlockedData(
                index=data.index,
                plan_id=data.plan_id,
                threshold=decision.threshold,
                hits=list(decision.hits),
                above_approval=decision.above_approval,
            ),
        )
    return SequenceReleased(
        id=event_id,
        source=GUARD_SOURCE,
        subject=planned.subject,
        data=SequenceReleasedData(index=data.index, plan_id=data.plan_id, reason=decision.reason),
    )


async def release_or_block(event: SequencePlanned, publisher: EventPublisher) -> None:
    await publisher.publish(decide(event))


Handler = Callable[[Any, EventPublisher], Awaitable[None]]

# Every other event on the topic is someone else's business.
EVENT_HANDLERS: dict[type[Envelope], Handler] = {
    SequencePlanned: release_or_block,
}


async def handle_event(event: JobEvent, publisher: EventPublisher) -> bool:
    """Run the handler of `event`; False when the guard has none for its type."""
    handler = EVENT_HANDLERS.get(type(event))
    if handler is None:
        return False
    await handler(event, publisher)
    return True
