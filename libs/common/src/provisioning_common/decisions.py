"""Which of the threshold guard's decisions counts: one rule for the runner and the read model.

The guard decides on every SequencePlanned it reads, and it reads them again (a guard started
with a fresh consumer group decides the whole topic anew), so its SequenceReleased and
SequenceBlocked arrive for old plans, twice, or after a restart planned the sequence again. A
decision counts only for the plan it was made on, while that plan is still waiting for it.
"""

from provisioning_common.statuses import JobStatus, SequenceStatus


def decision_counts(
    *,
    job_status: JobStatus | str,
    sequence_status: SequenceStatus | str,
    awaiting_plan_id: str | None,
    decided_plan_id: str,
) -> bool:
    """True when a guard decision on `decided_plan_id` is the one the sequence waits for.

    `awaiting_plan_id` is the plan the sequence waits on a decision for, None when it waits
    for none (not planned yet, or already released and applying): the runner passes its
    sequence's plan while the phase is "deciding", the read model its plan until a release.
    """
    return (
        job_status == JobStatus.RUNNING
        and sequence_status == SequenceStatus.RUNNING
        and awaiting_plan_id is not None
        and awaiting_plan_id == decided_plan_id
    )
