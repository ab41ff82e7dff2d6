"""One bad message never stops the runner's commands (issue 8, defect 2), with the real runner
and guard processes: the command is dead-lettered with the reason, and the next command on the
same partition is handled. (Every other consumer: tests/integration/consuming.)"""

import json

import pytest
from provisioning_common.events import JobCanceled, SequenceBlocked
from provisioning_common.topics import JOB_COMMANDS

from tests.integration.engine.conftest import (
    EngineRig,
    csv_text,
    definition,
    sequence,
)
from tests.integration.engine.test_failures import dead_letters
from tests.integration.engine.test_operator_decisions import cancel, validate

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def test_a_command_with_a_naive_time_is_dead_lettered_and_the_next_one_handled(
    engine: EngineRig, unique_name: str
) -> None:
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", [f"u{i},u{i}@x" for i in range(3)]))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                thresholds={"create": {"count": 2}},
            )
        )
    )
    await engine.events.wait_for(job_id, SequenceBlocked)
    # The validate of issue 8: schema-valid once, its time without a UTC offset raised
    # TypeError in the runner on every redelivery, and the partition never moved again.
    poison = json.loads(validate(job_id).model_dump_json())
    poison["time"] = "2026-03-01T12:00:00"
    key = job_id.encode()
    await engine.broker.publish(
        json.dumps(poison).encode(), topic=engine.kafka.topic(JOB_COMMANDS), key=key
    )
    # Another operator's cancel, behind it on the same partition (same key), is handled.
    await engine.publish_command(cancel(job_id))
    await engine.events.wait_for(job_id, JobCanceled, timeout=60)
    (dead,) = await dead_letters(engine, JOB_COMMANDS, key, count=1)
    assert json.loads(dead.value)["data"]["command_id"] == poison["data"]["command_id"]
    assert "timezone" in dict(dead.headers)["dlq_reason"].decode()
