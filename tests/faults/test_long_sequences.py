"""A sequence that lasts longer than the consumer's poll interval: the runner's consumer stays
in its group, and no rebalance makes the sequence planned or applied twice."""

from datetime import timedelta

import pytest
from provisioning_common.events import (
    JobStarted,
    SequenceCompleted,
    SequencePlanned,
    SequenceStarted,
)
from provisioning_common.settings import KafkaSettings

from tests.faults.conftest import MAX_POLL_INTERVAL_MS, Figures
from tests.faults.scoring import count_applied_twice, count_stalled, count_target, settle
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

# Enough that the apply outlasts the 6 s poll interval with margin: 8,000 once did, until
# chunked plans made the whole sequence take under 4 s.
RECORDS = 25_000


def test_the_poll_interval_is_configurable() -> None:
    # The fault suite runs every service with a short one
    # (KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS), so a handler that held its consumer longer would be
    # seen to lose its partitions.
    assert "consumer_max_poll_interval_ms" in KafkaSettings.model_fields
    settings = KafkaSettings.model_validate({"consumer_max_poll_interval_ms": MAX_POLL_INTERVAL_MS})
    assert getattr(settings, "consumer_max_poll_interval_ms", None) == MAX_POLL_INTERVAL_MS


def test_a_sequence_longer_than_the_poll_interval_runs_once(stack: Stack, figures: Figures) -> None:
    """A sequence applying 25,000 records for longer than max.poll.interval.ms (6 s)"""
    name = f"long-{stack.kafka.topic_prefix.strip('.')}"
    rows = "".join(f"u{i},u{i}@example.org\n" for i in range(RECORDS))
    path = stack.write_source(f"{name}/people.csv", "uid,mail\n" + rows)
    stack.define(
        {
            "id": name,
            "name": name,
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": path},
                    "target": {"type": "mongo", "collection": name},
                    "key": "uid",
                    "thresholds": {"create": {"count": RECORDS + 1}},
                }
            ],
        }
    )
    job_id = stack.submit(name)
    statuses = settle(stack, {job_id: "COMPLETED"}, figures, timeout=150)
    count_target(stack, name, RECORDS, figures)
    count_applied_twice(stack, [job_id], figures)
    count_stalled(stack, figures)
    events = [e for e in stack.events() if e.subject == job_id]
    started = [e for e in events if isinstance(e, SequenceStarted)]
    planned = {e.id for e in events if isinstance(e, SequencePlanned)}
    completed = [e for e in events if isinstance(e, SequenceCompleted)]
    lasted = completed[0].time - started[0].time if started and completed else timedelta()
    figures.notes.append(f"the sequence lasted {lasted.total_seconds():.0f}s")

    assert statuses == {job_id: "COMPLETED"}
    assert lasted > timedelta(milliseconds=MAX_POLL_INTERVAL_MS), "too short to test anything"
    assert len({e.id for e in events if isinstance(e, JobStarted)}) == 1
    assert len({e.id for e in started}) == 1
    assert len(planned) == 1
    assert figures.applied_twice == 0, figures.notes
    assert stack.count(name) == RECORDS
