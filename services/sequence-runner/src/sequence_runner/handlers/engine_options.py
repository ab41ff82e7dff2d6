"""How the runner's engine paces its work: batch sizes, parallelism, retries and waits."""

from dataclasses import dataclass, field

from sequence_runner.domain.planner import PlanBound


@dataclass(frozen=True)
class EngineOptions:
    progress_interval_seconds: float = 1.0
    # Changes written per batch; None: the target's own `apply_batch_size`, else
    # sequence_work.DEFAULT_APPLY_BATCH.
    apply_batch_size: int | None = None
    # Jobs planned or applied at the same time by one runner process.
    max_parallel_jobs: int = 2
    # An unexpected error (the database away) is retried this many times before the sequence
    # fails with it, so a short outage does not fail every running job.
    work_retries: int = 3
    work_retry_backoff_seconds: float = 1.0
    # Compare-and-set conflicts in a row before giving up on a transition.
    conflict_retries: int = 20
    # How long an operator's command may wait for the guard's decision it was sent against:
    # commands and events travel on different topics, so a validate sent for a job the
    # projection already shows at THRESHOLD can reach us before the SequenceBlocked does.
    decision_wait_seconds: float = 30.0
    # After giving up on a job's work (the database or the broker away), look at it again this
    # much later: its unsent events and unfinished work must not wait for the next start.
    work_resume_seconds: float = 30.0
    # How soon a job waiting for a target another job plans or writes looks again.
    target_wait_seconds: float = 1.0
    # How much of a sequence is planned in memory; beyond it, the planner spills to disk.
    plan_bound: PlanBound = field(default_factory=PlanBound)
