"""Sequences that fail (with a reason naming the line), restarts that resume them, and
malformed messages that go to the dead-letter topics while the engine moves on."""

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from provisioning_common.commands import CommandData, RestartJob
from provisioning_common.events import (
    JobCompleted,
    JobFailed,
    SequenceCompleted,
    SequenceFailed,
    SequenceStarted,
)
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, dead_letter_topic

from tests.integration.engine.conftest import EngineRig, csv_text, definition, sequence

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


def restart(job_id: str) -> RestartJob:
    data = CommandData(command_id=str(uuid.uuid4()), requested_by="carol")
    return RestartJob(source="/provisioning/job-api", subject=job_id, data=data)


async def test_a_failed_sequence_resumes_on_restart_without_running_completed_ones_again(
    engine: EngineRig, unique_name: str
) -> None:
    people, groups = f"{unique_name}_people", f"{unique_name}_groups"
    engine.write(f"{unique_name}/people.csv", csv_text("uid,mail", ["u1,u1@x", "u2,u2@x"]))
    engine.write(f"{unique_name}/groups.csv", csv_text("cn,label", ["admins,A", "staff", "x,X"]))
    job_id = await engine.submit(
        definition(
            sequence(
                "people", {"type": "csv", "path": f"{unique_name}/people.csv"}, collection=people
            ),
            sequence(
                "groups",
                {"type": "csv", "path": f"{unique_name}/groups.csv"},
                collection=groups,
                key="cn",
            ),
        )
    )
    (failed,) = await engine.events.wait_for(job_id, JobFailed)
    assert failed.data.index == 1
    assert failed.data.reason == (f"{unique_name}/groups.csv: line 3: expected 2 fields, found 1")
    (sequence_failed,) = engine.events.events(job_id, SequenceFailed)
    assert sequence_failed.data.reason == failed.data.reason
    assert await engine.target[groups].count_documents({}) == 0
    # A hand edit the first sequence would undo if it ran again.
    await engine.target[people].update_one({"_id": "u1"}, {"$set": {"mail": "by-hand@x"}})

    engine.write(f"{unique_name}/groups.csv", csv_text("cn,label", ["admins,A", "staff,S"]))
    failed_at = len(engine.events.events(job_id))
    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobCompleted)
    after_restart = engine.events.events(job_id)[failed_at:]
    assert [e.data.index for e in after_restart if isinstance(e, SequenceStarted)] == [1]
    assert [e.data.index for e in after_restart if isinstance(e, SequenceCompleted)] == [1]
    assert (await engine.records(people))["u1"]["mail"] == "by-hand@x"
    assert await engine.database["plans"].count_documents({"job_id": job_id, "index": 0}) == 1
    assert set(await engine.records(groups)) == {"admins", "staff"}
    run = await engine.run(job_id)
    assert run["status"] == "COMPLETED"
    assert run["attempt"] == 2


@pytest.mark.parametrize(
    ("source", "mapping", "reason"),
    [
        (
            {"type": "csv", "path": "nowhere/none.csv"},
            None,
            "source file 'nowhere/none.csv' not found in the data folder",
        ),
        (
            {"type": "inline"},
            {"uid": "employee_id"},
            "inputs.people: line 1: source field 'employee_id' (mapped to 'uid') is missing; "
            "the record has: uid",
        ),
        ({"type": "jsonl", "path": "{name}.jsonl"}, None, "{name}.jsonl: line 2: invalid JSON"),
        (
            {"type": "csv", "path": "{name}.csv"},
            None,
            "{name}.csv: duplicate key uid='a' at lines 2 and 4",
        ),
    ],
    ids=["missing-file", "unmapped-field", "bad-json", "duplicate-key"],
)
async def test_a_sequence_that_cannot_be_planned_fails_with_the_reason(
    engine: EngineRig,
    unique_name: str,
    source: dict[str, Any],
    mapping: dict[str, str] | None,
    reason: str,
) -> None:
    engine.write(f"{unique_name}.jsonl", '{"uid": "a"}\n{"uid": \n')
    engine.write(f"{unique_name}.csv", 'uid,mail\na,"x\ny"\na,z\n')
    if "path" in source:
        source = {**source, "path": source["path"].format(name=unique_name)}
    job_id = await engine.submit(
        definition(
            sequence("people", source, collection=unique_name, mapping=mapping),
        ),
        inputs={"people": [{"uid": "a"}]},
    )
    (failed,) = await engine.events.wait_for(job_id, JobFailed)
    assert failed.data.reason.startswith(reason.format(name=unique_name))
    assert await engine.target[unique_name].count_documents({}) == 0


async def test_a_symlink_out_of_the_data_folder_is_refused(
    engine: EngineRig, unique_name: str, tmp_path: Any
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("uid\nroot\n")
    (engine.data_dir / f"{unique_name}.csv").symlink_to(outside)
    job_id = await engine.submit(
        definition(
            sequence(
                "people", {"type": "csv", "path": f"{unique_name}.csv"}, collection=unique_name
            )
        )
    )
    (failed,) = await engine.events.wait_for(job_id, JobFailed)
    assert "resolves outside the data folder; refused" in failed.data.reason


async def dead_letters(engine: EngineRig, topic: str, key: bytes, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        dead_letter_topic(engine.kafka.topic(topic)),
        bootstrap_servers=engine.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                if record.key == key:
                    found.append(record)
                    if len(found) >= count:
                        return found
    finally:
        await consumer.stop()
    return found


async def test_malformed_messages_go_to_the_dead_letter_topics_and_the_engine_moves_on(
    engine: EngineRig, unique_name: str
) -> None:
    key = unique_name.encode()
    await engine.broker.publish(b"{not json", topic=engine.kafka.topic(JOB_EVENTS), key=key)
    await engine.broker.publish(
        b'{"type": "provisioning.RestartJob"}', topic=engine.kafka.topic(JOB_COMMANDS), key=key
    )
    # Both the runner and the guard read job-events: each keeps its own copy of the reason.
    events_dlq = await dead_letters(engine, JOB_EVENTS, key, count=2)
    assert {record.value for record in events_dlq} == {b"{not json"}
    reasons = [dict(record.headers)["dlq_reason"].decode() for record in events_dlq]
    assert all("JSON" in reason for reason in reasons), reasons
    (command_dlq,) = await dead_letters(engine, JOB_COMMANDS, key, count=1)
    assert b"Field required" in dict(command_dlq.headers)["dlq_reason"]

    job_id = await engine.submit(
        definition(sequence("accounts", {"type": "inline"}, collection=unique_name)),
        inputs={"accounts": [{"uid": "a"}]},
    )
    await engine.events.wait_for(job_id, JobCompleted)


async def test_a_failure_reason_too_large_to_publish_is_bounded_and_the_job_can_restart(
    engine: EngineRig, unique_name: str
) -> None:
    """Issue 8, defect 4: a duplicated 1.2 MB key made SequenceFailed larger than the broker
    takes; it never left the outbox and the job stayed RUNNING for every reader."""
    huge = "k" * 1_200_000
    path = f"{unique_name}.jsonl"
    engine.write(path, f'{{"uid": "{huge}"}}\n{{"uid": "{huge}"}}\n')
    job_id = await engine.submit(
        definition(sequence("people", {"type": "jsonl", "path": path}, collection=unique_name))
    )
    (failed,) = await engine.events.wait_for(job_id, JobFailed, timeout=60)
    reason = failed.data.reason
    assert len(reason.encode()) <= 2048
    assert reason.startswith(f"{path}: duplicate key uid='kkkk")
    assert "1199800 more characters" in reason
    assert reason.endswith("at lines 1 and 2")
    (sequence_failed,) = engine.events.events(job_id, SequenceFailed)
    assert sequence_failed.data.reason == reason
    run = await engine.run(job_id)
    assert (run["status"], run["outbox"]) == ("FAILED", [])
    assert run["sequences"][0]["reason"] == reason

    engine.write(path, '{"uid": "a"}\n')
    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobCompleted)
    assert set(await engine.records(unique_name)) == {"a"}
