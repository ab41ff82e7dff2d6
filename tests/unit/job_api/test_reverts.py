"""Which sequences an admin may revert, and the definition a revert job runs."""

from typing import Any

import pytest
from job_api.auth.permissions import Role
from job_api.domain.job_instance import JobInstanceSummary, SequenceInstance
from job_api.domain.reverts import revert_definition, revert_offered, revert_refusal
from provisioning_common.definitions import JobDefinition


def job(*statuses: str, dry_run: bool = False) -> JobInstanceSummary:
    return JobInstanceSummary(
        id="j1",
        definition_id="d",
        status="COMPLETED",
        dry_run=dry_run,
        sequences=[
            SequenceInstance(index=i, name=f"s{i}", status=status, plan_id=f"p{i}")
            for i, status in enumerate(statuses)
        ],
    )


def test_a_completed_sequence_of_an_applied_job_can_be_reverted() -> None:
    assert revert_refusal(job("COMPLETED"), 0) is None


@pytest.mark.parametrize(
    ("doc", "index", "code", "words"),
    [
        (job("COMPLETED"), 3, 404, "has no sequence 3"),
        (job("COMPLETED", dry_run=True), 0, 422, "is a dry run"),
        (job("COMPLETED", "THRESHOLD"), 1, 409, "is THRESHOLD; only a COMPLETED sequence"),
        (job("FAILED"), 0, 409, "is FAILED"),
    ],
)
def test_other_sequences_are_refused_with_a_reason(
    doc: JobInstanceSummary, index: int, code: int, words: str
) -> None:
    refused = revert_refusal(doc, index)
    assert refused is not None
    assert refused.status_code == code
    assert words in str(refused)


def test_revert_is_offered_to_admins_only_and_never_on_a_dry_run() -> None:
    assert revert_offered(job("COMPLETED"), Role.ADMIN)
    assert not revert_offered(job("COMPLETED"), Role.OPERATOR)
    assert not revert_offered(job("COMPLETED"), Role.VIEWER)
    assert not revert_offered(job("COMPLETED", dry_run=True), Role.ADMIN)
    assert not revert_offered(job("FAILED"), Role.ADMIN)


def test_a_revert_job_runs_the_reverted_sequence_alone_without_a_schedule() -> None:
    def sequence(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "source": {"type": "inline"},
            "target": {"type": "mongo", "collection": name},
            "key": "uid",
            "thresholds": {"create": {"count": 5}},
        }

    snapshot = JobDefinition.model_validate(
        {
            "id": "d",
            "name": "D",
            "sequences": [sequence("people"), sequence("groups")],
            "schedule": {"interval_minutes": 30},
        }
    )
    made = revert_definition(snapshot, 1)
    assert [s.name for s in made.sequences] == ["groups"]
    assert made.sequences[0].thresholds == snapshot.sequences[1].thresholds
    assert made.schedule is None
