"""Statuses of job and sequence instances, and the transitions allowed between them."""

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    THRESHOLD = "THRESHOLD"
    VALIDATED = "VALIDATED"
    CANCELED = "CANCELED"


class SequenceStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    THRESHOLD = "THRESHOLD"
    VALIDATED = "VALIDATED"
    CANCELED = "CANCELED"


JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.THRESHOLD, JobStatus.CANCELED}
    ),
    JobStatus.THRESHOLD: frozenset({JobStatus.VALIDATED, JobStatus.RUNNING, JobStatus.CANCELED}),
    JobStatus.VALIDATED: frozenset({JobStatus.RUNNING, JobStatus.CANCELED}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}

SEQUENCE_TRANSITIONS: dict[SequenceStatus, frozenset[SequenceStatus]] = {
    SequenceStatus.PENDING: frozenset({SequenceStatus.RUNNING, SequenceStatus.CANCELED}),
    SequenceStatus.RUNNING: frozenset(
        {SequenceStatus.COMPLETED, SequenceStatus.FAILED, SequenceStatus.THRESHOLD}
    ),
    SequenceStatus.THRESHOLD: frozenset(
        {SequenceStatus.VALIDATED, SequenceStatus.RUNNING, SequenceStatus.CANCELED}
    ),
    SequenceStatus.VALIDATED: frozenset({SequenceStatus.RUNNING, SequenceStatus.CANCELED}),
    # A failed sequence is planned again on restart.
    SequenceStatus.FAILED: frozenset({SequenceStatus.RUNNING}),
    SequenceStatus.COMPLETED: frozenset(),
    SequenceStatus.CANCELED: frozenset(),
}

# Statuses from which a job is restarted by an operator.
RESTARTABLE_JOB_STATUSES = frozenset({JobStatus.THRESHOLD, JobStatus.VALIDATED, JobStatus.FAILED})
# Statuses at which an operator's decision on a threshold is awaited.
AWAITING_DECISION_JOB_STATUSES = frozenset({JobStatus.THRESHOLD, JobStatus.VALIDATED})
# A job is finished when nothing will happen to it without an operator: only then may it be
# archived or deleted (a job waiting at a threshold is canceled first, so that no decision is lost).
FINISHED_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


def job_can_move(current: JobStatus, target: JobStatus) -> bool:
    return target in JOB_TRANSITIONS[current]


def sequence_can_move(current: SequenceStatus, target: SequenceStatus) -> bool:
    return target in SEQUENCE_TRANSITIONS[current]
