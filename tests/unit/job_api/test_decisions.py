"""The rule of which guard decision counts, shared by the runner and the read model."""

import pytest
from provisioning_common.decisions import decision_counts
from provisioning_common.statuses import JobStatus, SequenceStatus


def test_a_decision_on_the_plan_awaiting_it_counts() -> None:
    assert decision_counts(
        job_status=JobStatus.RUNNING,
        sequence_status=SequenceStatus.RUNNING,
        awaiting_plan_id="plan-2",
        decided_plan_id="plan-2",
    )


@pytest.mark.parametrize(
    ("job_status", "sequence_status", "awaiting", "decided"),
    [
        # A decision on an earlier plan (the sequence was planned again after a restart).
        (JobStatus.RUNNING, SequenceStatus.RUNNING, "plan-2", "plan-1"),
        # Nothing awaited: not planned yet, or released and being applied.
        (JobStatus.RUNNING, SequenceStatus.RUNNING, None, "plan-2"),
        # Decided already: the job waits for an operator, or is over.
        (JobStatus.THRESHOLD, SequenceStatus.THRESHOLD, "plan-2", "plan-2"),
        (JobStatus.COMPLETED, SequenceStatus.COMPLETED, "plan-2", "plan-2"),
        (JobStatus.CANCELED, SequenceStatus.CANCELED, "plan-2", "plan-2"),
    ],
)
def test_any_other_decision_does_not_count(
    job_status: JobStatus, sequence_status: SequenceStatus, awaiting: str | None, decided: str
) -> None:
    assert not decision_counts(
        job_status=job_status,
        sequence_status=sequence_status,
        awaiting_plan_id=awaiting,
        decided_plan_id=decided,
    )


def test_statuses_read_back_from_mongodb_as_strings_compare_the_same() -> None:
    assert decision_counts(
        job_status="RUNNING", sequence_status="RUNNING", awaiting_plan_id="p", decided_plan_id="p"
    )
