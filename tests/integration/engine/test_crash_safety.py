"""kill -9 of the runner in the middle of a job: restarted, it finishes the job, loses no event
and leaves the target exactly as planned."""

import pytest
from provisioning_common.events import JobCompleted, SequenceCompleted, SequenceProgress

from tests.integration.engine.conftest import EngineRig, csv_text, definition, sequence
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

RECORDS = 3000


async def test_a_runner_killed_while_applying_finishes_the_job_after_restart(
    engine: EngineRig, unique_name: str
) -> None:
    people, groups = f"{unique_name}_people", f"{unique_name}_groups"
    engine.write(
        f"{unique_name}/people.csv", csv_text("uid,mail", [f"u{i},u{i}@x" for i in range(RECORDS)])
    )
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}/people.csv"},
                collection=people,
                thresholds={"create": {"count": RECORDS + 1}},
            ),
            sequence("groups", {"type": "inline"}, collection=groups, key="cn"),
        ),
        inputs={"groups": [{"cn": "all", "size": RECORDS}]},
    )

    async def applying() -> bool:
        progress = engine.events.events(job_id, SequenceProgress)
        return any(p.data.phase == "applying" and p.data.index == 0 for p in progress)

    await eventually(applying, timeout=60, interval=0.05, what="the first sequence applying")
    engine.runner.kill_hard()
    written = await engine.target[people].count_documents({})
    assert written < RECORDS, "the sequence finished before the crash; nothing was tested"
    assert "JobCompleted" not in engine.events.types(job_id)

    engine.runner.start_again()
    await engine.events.wait_for(job_id, JobCompleted, timeout=90)
    completed = engine.events.events(job_id, SequenceCompleted)
    assert sorted({(c.data.index, c.id) for c in completed}) == sorted(
        {(0, completed[0].id), (1, completed[-1].id)}
    )
    assert len({e.id for e in engine.events.events(job_id, JobCompleted)}) == 1
    assert await engine.target[people].count_documents({}) == RECORDS
    assert await engine.target[people].find_one({"_id": "u1234"}) == {
        "_id": "u1234",
        "uid": "u1234",
        "mail": "u1234@x",
    }
    assert await engine.records(groups) == {"all": {"_id": "all", "cn": "all", "size": RECORDS}}
    run = await engine.run(job_id)
    assert run["status"] == "COMPLETED"
    assert run["outbox"] == []
