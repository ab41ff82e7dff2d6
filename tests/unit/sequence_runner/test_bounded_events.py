"""Reasons and quoted values are bounded in every event, and an event the broker refuses as it
is never holds up the job's later events (issue 8, defect 4)."""

import pytest
from provisioning_common.events import (
    REASON_LIMIT_BYTES,
    JobFailed,
    JobFailedData,
    SequenceFailed,
    SequenceFailedData,
    SequenceStarted,
    SequenceStartedData,
    bounded_event,
    bounded_reason,
    quoted,
)
from provisioning_common.statuses import JobStatus
from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.handlers.engine import Engine, EngineOptions
from sequence_runner.handlers.messages import COMMAND_HANDLERS, EVENT_HANDLERS, handle

from tests.unit.sequence_runner.builders import (
    JOB_ID,
    definition,
    job_created,
    restart_command,
    sequence,
)
from tests.unit.sequence_runner.fakes import FakeConnectors, FakePlans, FakePublisher, FakeRuns


def test_a_quoted_value_is_shortened_and_the_reason_keeps_its_end() -> None:
    reason = bounded_reason(f"p.jsonl: duplicate key uid={'k' * 1_200_000!r} at lines 1 and 2")
    assert reason == (
        f"p.jsonl: duplicate key uid='{'k' * 200}… [1199800 more characters]' at lines 1 and 2"
    )
    assert quoted("x" * 300) == f"'{'x' * 200}… [100 more characters]'"
    assert quoted(7) == "7"


@pytest.mark.parametrize("letter", ["x", "é", "家"])
def test_a_long_reason_is_cut_in_the_middle_to_2_kib(letter: str) -> None:
    reason = bounded_reason("start " + letter * 10_000 + " at line 9")
    assert len(reason.encode()) <= REASON_LIMIT_BYTES
    assert reason.startswith("start ")
    assert reason.endswith(" at line 9")
    assert "characters in all, cut" in reason


def test_every_reason_of_an_event_is_bounded_when_it_is_made() -> None:
    failed = SequenceFailed(
        source="test", subject="j", data=SequenceFailedData(index=0, reason="r" * 100_000)
    )
    assert len(failed.data.reason.encode()) <= REASON_LIMIT_BYTES
    job_failed = JobFailed(source="test", subject="j", data=JobFailedData(reason="r" * 100_000))
    assert len(job_failed.data.reason.encode()) <= REASON_LIMIT_BYTES


def test_a_bounded_copy_of_an_event_keeps_its_identity() -> None:
    started = SequenceStarted(
        source="test", subject="j", data=SequenceStartedData(index=1, name="n" * 5000, attempt=2)
    )
    copy = bounded_event(started)
    assert isinstance(copy, SequenceStarted)
    assert (copy.id, copy.subject, copy.data.index, copy.data.attempt) == (started.id, "j", 1, 2)
    assert copy.data.name == "n" * 200 + "… [4800 more characters]"


async def test_an_event_the_broker_refuses_does_not_hold_up_the_jobs_later_events() -> None:
    runs, plans, publisher = FakeRuns(), FakePlans(), FakePublisher()
    # A 2 KiB reason fits in an event, but this broker takes no more than 1500 bytes.
    publisher.max_bytes = 1500
    source_error = "people.fake: line 2: " + "bad " * 1000
    connectors = FakeConnectors(sources={"people": [{"uid": "u1"}]})
    engine = Engine(
        runs, plans, publisher, connectors, EngineOptions(work_retries=0, work_resume_seconds=60)
    )

    connectors.sources["people"] = SourceError(source_error)
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))
    await handle(EVENT_HANDLERS, created, engine)
    await engine.idle()
    assert runs.rows[JOB_ID].run.status is JobStatus.FAILED
    assert runs.rows[JOB_ID].outbox == []
    assert publisher.types()[-2:] == ["SequenceFailed", "JobFailed"]
    shown = publisher.of_type(JobFailed)[-1].data.reason
    assert shown.startswith("people.fake: line 2: bad bad")
    assert len(shown) <= 250
    assert [event.type for event, _ in publisher.set_aside_events] == [
        "provisioning.SequenceFailed",
        "provisioning.JobFailed",
    ]
    assert "refused" in publisher.set_aside_events[0][1]

    # And the operators' actions go on.
    connectors.sources["people"] = [{"uid": "u1"}]
    await handle(COMMAND_HANDLERS, restart_command(), engine)
    await engine.idle()
    assert publisher.types()[-1] == "SequencePlanned"


def test_a_bounded_reason_read_back_is_the_same() -> None:
    once = bounded_reason(f"key={'k' * 5000!r} at " + "x" * 5000 + " line 3")
    assert bounded_reason(once) == once
