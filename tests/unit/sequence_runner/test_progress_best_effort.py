"""Progress events are best effort: a broker that never answers them must not stall an apply."""

import asyncio

from provisioning_common.envelope import Envelope
from provisioning_common.events import SequencePlanned, SequenceProgress
from provisioning_common.statuses import JobStatus
from sequence_runner.handlers.engine import Engine, EngineOptions
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle
from sequence_runner.handlers.progress import ProgressReporter
from threshold_guard.handlers.decisions import decide

from tests.unit.sequence_runner.builders import JOB_ID, definition, job_created, sequence
from tests.unit.sequence_runner.fakes import FakeConnectors, FakePlans, FakePublisher, FakeRuns


class ProgressNeverAnswered(FakePublisher):
    """The broker as in a Kafka outage, for progress: every SequenceProgress hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = 0

    async def publish(self, event: Envelope) -> None:
        if isinstance(event, SequenceProgress):
            self.hanging += 1
            await asyncio.Event().wait()
        await super().publish(event)


async def test_an_apply_completes_while_progress_publishing_hangs() -> None:
    runs, plans, publisher = FakeRuns(), FakePlans(), ProgressNeverAnswered()
    many = [{"uid": f"u{i}"} for i in range(40)]
    connectors = FakeConnectors(sources={"people": many})
    engine = Engine(
        runs,
        plans,
        publisher,
        connectors,
        EngineOptions(progress_interval_seconds=0, apply_batch_size=5),
    )
    await handle(EVENT_HANDLERS, job_created(definition(sequence("people"))), engine)
    async with asyncio.timeout(10):
        await engine.idle()
        (planned,) = publisher.of_type(SequencePlanned)
        await handle(EVENT_HANDLERS, decide(planned), engine)
        await engine.idle()
    assert runs.rows[JOB_ID].run.status is JobStatus.COMPLETED
    assert len(connectors.targets["people"].records) == 40
    # One progress event in flight per phase: the rest were dropped, not queued behind it.
    assert 1 <= publisher.hanging <= 2


async def test_the_newest_progress_goes_out_once_the_broker_answers_again() -> None:
    release, both_sent = asyncio.Event(), asyncio.Event()
    sent: list[int] = []

    class SlowBroker(FakePublisher):
        async def publish(self, event: Envelope) -> None:
            await release.wait()
            assert isinstance(event, SequenceProgress)
            sent.append(event.data.done)
            if len(sent) == 2:
                both_sent.set()

    clock = iter(float(i) for i in range(100))
    reporter = ProgressReporter(
        SlowBroker(),
        job_id=JOB_ID,
        index=0,
        phase="applying",
        interval_seconds=1,
        monotonic=lambda: next(clock),
        publish_timeout_seconds=5,
    )
    for done in range(1, 6):
        await reporter.tick(done * 10, 50)
    release.set()
    async with asyncio.timeout(5):
        await both_sent.wait()
    # The first one was in flight; of the four offered meanwhile only the newest is kept.
    assert sent == [10, 50]
