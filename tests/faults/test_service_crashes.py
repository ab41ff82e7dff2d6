"""kill -9 of each service at its worst moment, on the real broker and database: every job
accepted still ends in its right state, the target holds exactly what was planned, and
nothing is applied twice or written while blocked."""

import uuid
from typing import Any

import pytest

from tests.faults.conftest import Figures
from tests.faults.scoring import (
    count_applied_twice,
    count_blocked_writes,
    count_stalled,
    count_target,
    settle,
)
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

BIG = 12_000


def definition(
    name: str, source: dict[str, Any], collection: str, thresholds: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "sequences": [
            {
                "name": "people",
                "source": source,
                "target": {"type": "mongo", "collection": collection},
                "key": "uid",
                "thresholds": thresholds,
            }
        ],
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def phase_of(stack: Stack, job_id: str) -> str | None:
    run = stack.run(job_id)
    if run is None:
        return None
    phase: str | None = run["sequences"][0].get("phase")
    return phase


def test_runner_killed_while_planning_and_while_applying(stack: Stack, figures: Figures) -> None:
    """kill -9 of the sequence runner while it plans, then while it applies, 12,000 records"""
    name = unique("crash-runner")
    rows = "".join(f"u{i},u{i}@example.org,Person {i}\n" for i in range(BIG))
    path = stack.write_source(f"{name}/people.csv", "uid,mail,cn\n" + rows)
    stack.define(
        definition(name, {"type": "csv", "path": path}, name, {"create": {"count": BIG + 1}})
    )
    runner = stack.services["sequence-runner"]
    job_id = stack.submit(name)

    wait_until(
        lambda: phase_of(stack, job_id) == "planning",
        timeout=60,
        interval=0.02,
        what="the runner planning",
    )
    runner.kill_hard()
    assert phase_of(stack, job_id) == "planning", "the plan was done before the kill"
    figures.notes.append("killed while planning")
    runner.start(wait=False)

    wait_until(
        lambda: phase_of(stack, job_id) == "applying" and stack.count(name) > 0,
        timeout=120,
        interval=0.05,
        what="the runner applying",
    )
    runner.kill_hard()
    written = stack.count(name)
    figures.notes.append(f"killed while applying, {written} of {BIG} records written")
    runner.start(wait=False)

    statuses = settle(stack, {job_id: "COMPLETED"}, figures, timeout=180)
    found = count_target(stack, name, BIG, figures)
    count_applied_twice(stack, [job_id], figures)
    count_stalled(stack, figures)

    assert written < BIG, "the apply finished before the kill; nothing was tested"
    assert statuses == {job_id: "COMPLETED"}
    assert found == BIG
    assert stack.target[name].find_one({"_id": "u11345"}) == {
        "_id": "u11345",
        "uid": "u11345",
        "mail": "u11345@example.org",
        "cn": "Person 11345",
    }
    job = stack.job(job_id)
    assert job is not None
    assert job["sequences"][0]["applied"] == {"create": BIG, "update": 0, "delete": 0, "disable": 0}
    assert figures.applied_twice == 0, figures.notes
    assert figures.partitions_stalled == 0, figures.notes


def test_guard_killed_after_sequences_were_planned(stack: Stack, figures: Figures) -> None:
    """kill -9 of the threshold guard after SequencePlanned events, before its decisions"""
    name = unique("crash-guard")
    stack.define(
        definition(f"{name}-ok", {"type": "inline"}, f"{name}-ok", {"create": {"count": 50}})
    )
    stack.define(
        definition(f"{name}-stop", {"type": "inline"}, f"{name}-stop", {"create": {"count": 3}})
    )
    guard = stack.services["threshold-guard"]

    def people(job: int) -> dict[str, list[dict[str, Any]]]:
        return {"people": [{"uid": f"j{job}-u{i}", "mail": f"{i}@x"} for i in range(5)]}

    expected: dict[str, str] = {}
    targets: dict[str, list[str]] = {"ok": [], "stop": []}
    # Held still, so the first SequencePlanned stays undecided until the guard dies: a guard
    # free to run decided five records in milliseconds, between two polls of the probe below,
    # and the test once waited 60 s for a state it had missed.
    guard.suspend()
    for job in range(8):
        blocked = job % 2 == 1
        job_id = stack.submit(f"{name}-stop" if blocked else f"{name}-ok", people(job))
        expected[job_id] = "THRESHOLD" if blocked else "COMPLETED"
        targets["stop" if blocked else "ok"].append(job_id)
        if job == 1:
            # The first SequencePlanned is out: the guard dies before deciding it.
            wait_until(
                lambda: any(phase_of(stack, j) == "deciding" for j in expected),
                timeout=60,
                interval=0.02,
                what="a sequence waiting for the guard",
            )
            guard.kill_hard()
    # One job at a time plans and writes a target (the runner's target claim), so each of the
    # two targets has one sequence planned and waiting for the dead guard; the other jobs of
    # that target wait their turn behind it.
    wait_until(
        lambda: all(
            any(phase_of(stack, j) == "deciding" for j in jobs) for jobs in targets.values()
        ),
        timeout=60,
        what="a planned sequence waiting for the guard on each target",
    )
    figures.notes.append(
        f"{sum(phase_of(stack, j) == 'deciding' for j in expected)} of {len(expected)} "
        "sequences planned and undecided when the guard came back"
    )
    guard.start(wait=False)

    statuses = settle(stack, expected, figures)
    completed = [j for j, s in expected.items() if s == "COMPLETED"]
    count_target(stack, f"{name}-ok", 5 * len(completed), figures)
    blocked_writes = count_blocked_writes(stack, f"{name}-stop", figures)
    count_applied_twice(stack, list(expected), figures)
    count_stalled(stack, figures)

    assert statuses == expected
    assert stack.count(f"{name}-ok") == 5 * len(completed)
    assert blocked_writes == 0
    assert figures.applied_twice == 0, figures.notes
    assert figures.partitions_stalled == 0, figures.notes


def test_projector_killed_mid_burst(stack: Stack, figures: Figures) -> None:
    """kill -9 of the job-api projector in the middle of a burst of 40 jobs"""
    name = unique("crash-projector")
    stack.define(definition(name, {"type": "inline"}, name, {"create": {"count": 100}}))
    projector = stack.services["job-api-projector"]
    expected: dict[str, str] = {}
    for job in range(40):
        inputs = {"people": [{"uid": f"j{job}-a"}, {"uid": f"j{job}-b"}]}
        expected[stack.submit(name, inputs)] = "COMPLETED"
        if job == 12:
            projector.kill_hard()
        if job == 30:
            projector.start(wait=False)

    statuses = settle(stack, expected, figures)
    count_target(stack, name, 2 * len(expected), figures)
    count_applied_twice(stack, list(expected), figures)
    count_stalled(stack, figures)

    assert statuses == expected
    assert stack.count(name) == 2 * len(expected)
    # The read model equals the runner's own record of each job.
    for job_id in expected:
        run, shown = stack.run(job_id), stack.job(job_id)
        assert run is not None
        assert shown is not None
        assert shown["sequences"][0]["applied"] == run["sequences"][0]["applied"]
    assert figures.applied_twice == 0, figures.notes
    assert figures.partitions_stalled == 0, figures.notes
