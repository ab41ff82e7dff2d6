"""Poison on every topic: invalid JSON, a message that parses but cannot be handled, an unknown
type, and one of a megabyte. Each goes ahead of a real job on the same partition (same key);
that job must still end right, and no consumer group may be left behind on any partition."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, JOB_REQUESTS

from tests.faults.conftest import Figures
from tests.faults.scoring import count_applied_twice, count_blocked_writes, count_stalled, settle
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

KINDS = ("invalid JSON", "unprocessable", "unknown type", "oversized")
# Below the broker's 1 MiB message limit, far above anything a real message carries.
OVERSIZED = 1_000_000


def envelope(kind: str, subject: str, data: dict[str, Any], time: str | None = None) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/faults/poison",
            "type": f"provisioning.{kind}",
            "time": time or datetime.now(UTC).isoformat(),
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        }
    ).encode()


def command_data() -> dict[str, Any]:
    return {"command_id": str(uuid.uuid4()), "requested_by": "poison", "expected_status": None}


def poisons(topic: str, subject: str) -> dict[str, bytes]:
    """The four kinds of poison for one topic; `subject` is a job id nobody else uses."""
    invalid_json = b'{"type": "provisioning.JobStarted", "subject": "' + subject.encode()
    padding = "x" * OVERSIZED
    if topic == JOB_REQUESTS:
        return {
            "invalid JSON": invalid_json,
            # Parses as a request; its definition does not exist: rejected, with the reason.
            "unprocessable": json.dumps(
                {"request_id": f"poison-{subject}", "definition_id": "no-such-definition"}
            ).encode(),
            "unknown type": json.dumps({"type": "provisioning.PurgeEverything"}).encode(),
            "oversized": json.dumps(
                {"request_id": f"big-{subject}", "definition_id": "x", "padding": padding}
            ).encode(),
        }
    if topic == JOB_COMMANDS:
        return {
            "invalid JSON": invalid_json,
            # A well-formed ValidateThreshold whose time has no UTC offset (issue 8, defect 2).
            "unprocessable": envelope(
                "ValidateThreshold",
                subject,
                {**command_data(), "plan_id": None},
                time="2026-12-06T04:00:00",
            ),
            "unknown type": envelope("PurgeEverything", subject, command_data()),
            "oversized": envelope("CancelJob", subject, {**command_data(), "padding": padding}),
        }
    return {
        "invalid JSON": invalid_json,
        # A well-formed JobRejected timed at the edge of the calendar (issue 8, defect 2).
        "unprocessable": envelope(
            "JobRejected",
            subject,
            {"request_id": f"poison-{subject}", "origin": "kafka", "reason": "poison"},
            time="0001-01-01T00:00:00+01:00",
        ),
        "unknown type": envelope("JobExploded", subject, {}),
        "oversized": envelope("JobArchived", subject, {"archived_by": padding, "archived": True}),
    }


def definition(name: str, limit: int) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": name},
                "key": "uid",
                "thresholds": {"create": {"count": limit}},
            }
        ],
    }


def people(tag: str, count: int) -> dict[str, list[dict[str, Any]]]:
    return {"people": [{"uid": f"{tag}-{i}"} for i in range(count)]}


def test_poison_on_every_topic(own_stack: Stack, figures: Figures) -> None:
    """Poison on job-requests, job-events and job-commands: invalid JSON, unprocessable,
    unknown type, oversized (1 MB)"""
    stack = own_stack
    run = uuid.uuid4().hex[:8]
    passes, stops = f"poison-ok-{run}", f"poison-stop-{run}"
    stack.define(definition(passes, 50))
    stack.define(definition(stops, 2))
    expected: dict[str, str] = {}
    completed_records = 0

    # job-commands: poison ahead of another operator's cancel of a job waiting at THRESHOLD.
    waiting = {stack.submit(stops, people(f"c{i}", 3)): kind for i, kind in enumerate(KINDS)}
    stack.wait_settled(list(waiting))
    for job_id, kind in waiting.items():
        stack.publish(JOB_COMMANDS, poisons(JOB_COMMANDS, job_id)[kind], key=job_id)
        stack.decide(job_id, "threshold/cancel")
        expected[job_id] = "CANCELED"

    # job-events: poison ahead of a job's first event.
    for i, kind in enumerate(KINDS):
        request_id = f"poison-events-{run}-{i}"
        job_id = job_id_for_request(request_id)
        stack.publish(JOB_EVENTS, poisons(JOB_EVENTS, job_id)[kind], key=job_id)
        assert stack.submit(passes, people(f"e{i}", 4), request_id=request_id) == job_id
        expected[job_id] = "COMPLETED"
        completed_records += 4

    # job-requests: poison ahead of a request sent over Kafka with the same key.
    for i, kind in enumerate(KINDS):
        request_id = f"poison-requests-{run}-{i}"
        stack.publish(JOB_REQUESTS, poisons(JOB_REQUESTS, request_id)[kind], key=request_id)
        request = {"request_id": request_id, "definition_id": passes, "inputs": people(f"r{i}", 4)}
        stack.publish(JOB_REQUESTS, json.dumps(request).encode(), key=request_id)
        expected[job_id_for_request(request_id)] = "COMPLETED"
        completed_records += 4

    wait_until(
        lambda: all(stack.run(j) is not None for j in expected),
        timeout=60,
        what="every request to become a job",
    )
    statuses = settle(stack, expected, figures, timeout=45)
    found = stack.count(passes)
    figures.records += completed_records
    count_blocked_writes(stack, stops, figures)
    count_applied_twice(stack, list(expected), figures)
    count_stalled(stack, figures)
    dead = {
        topic: len(stack.dead_letters(topic)) for topic in (JOB_REQUESTS, JOB_EVENTS, JOB_COMMANDS)
    }
    figures.notes.append(f"dead letters: {dead}")

    assert statuses == expected
    assert found == completed_records
    assert figures.writes_while_blocked == 0
    assert figures.applied_twice == 0, figures.notes
    assert figures.partitions_stalled == 0, figures.notes
    # Everything that is not a message of its topic is dead-lettered with its reason, the
    # unprocessable event and command too once their handler gave up on them.
    assert dead[JOB_REQUESTS] >= 3, dead
    assert dead[JOB_EVENTS] >= 4, dead
    assert dead[JOB_COMMANDS] >= 4, dead
    rejected = stack.database["job_rejections"].count_documents({})
    assert rejected >= 3, "the rejected requests are kept for operators"
