"""The guard's handler: a decision event for each planned sequence, the same on every replay."""

from provisioning_common.definitions import Thresholds
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobCompleted,
    PlanCounts,
    SequenceBlocked,
    SequencePlanned,
    SequencePlannedData,
    SequenceReleased,
)
from threshold_guard.handlers.decisions import GUARD_SOURCE, decide, handle_event


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Envelope] = []

    async def publish(self, event: Envelope) -> None:
        self.published.append(event)


def planned(delete: int) -> SequencePlanned:
    return SequencePlanned(
        source="/provisioning/sequence-runner",
        subject="job-1",
        data=SequencePlannedData(
            index=1,
            name="people",
            plan_id="plan-7",
            counts=PlanCounts(create=0, update=0, delete=delete, unchanged=5, target_size=20),
            thresholds=Thresholds.model_validate({"delete": {"count": 3}}),
        ),
    )


def test_a_plan_within_thresholds_is_released_for_the_same_job_sequence_and_plan() -> None:
    decision = decide(planned(delete=2))
    assert isinstance(decision, SequenceReleased)
    assert decision.subject == "job-1"
    assert decision.source == GUARD_SOURCE
    assert (decision.data.index, decision.data.plan_id) == (1, "plan-7")
    assert decision.data.reason == "within_thresholds"


def test_a_plan_at_a_threshold_is_blocked_with_the_hit() -> None:
    decision = decide(planned(delete=3))
    assert isinstance(decision, SequenceBlocked)
    assert decision.data.threshold.action == "delete"
    assert decision.data.threshold.actual == 3
    assert decision.data.hits == [decision.data.threshold]


def test_a_replayed_plan_yields_the_same_decision_event() -> None:
    event = planned(delete=3)
    assert decide(event).id == decide(event).id
    assert decide(event).id != decide(planned(delete=3)).id


async def test_only_planned_sequences_are_decided_on() -> None:
    publisher = RecordingPublisher()
    assert await handle_event(JobCompleted(source="x", subject="job-1"), publisher) is False
    assert publisher.published == []
    assert await handle_event(planned(delete=0), publisher) is True
    assert [type(e) for e in publisher.published] == [SequenceReleased]
