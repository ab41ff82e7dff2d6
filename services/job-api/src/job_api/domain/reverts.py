"""Which applied sequences an admin may revert, and the definition a revert job runs: pure."""

from provisioning_common.definitions import JobDefinition
from provisioning_common.statuses import SequenceStatus

from job_api.auth.permissions import Permission, Role, role_allows
from job_api.domain.job_instance import JobInstanceSummary, SequenceInstance


class RevertRefusedError(Exception):
    """Why a sequence cannot be reverted; `status_code` is the HTTP answer (404, 409, 422)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code


def revert_refusal(doc: JobInstanceSummary, index: int) -> RevertRefusedError | None:
    """None when sequence `index` of the job applied a plan that a revert can undo."""
    sequence = doc.sequence(index)
    if sequence is None:
        last = len(doc.sequences) - 1
        return RevertRefusedError(
            404, f"job {doc.id} has no sequence {index}; its sequences are 0 to {last}"
        )
    if doc.dry_run:
        # Not a state that will change: the request itself is wrong.
        return RevertRefusedError(
            422, f"job {doc.id} is a dry run: it applied nothing, so there is nothing to revert"
        )
    if not _applied(sequence):
        return RevertRefusedError(
            409,
            f"sequence {index} ({sequence.name}) of job {doc.id} is {sequence.status}; only a "
            "COMPLETED sequence, whose plan was applied, can be reverted",
        )
    return None


def revert_offered(doc: JobInstanceSummary, role: Role) -> bool:
    """Whether the console offers Revert on the job's completed sequences to this role."""
    return (
        role_allows(role, Permission.REVERT)
        and not doc.dry_run
        and any(_applied(sequence) for sequence in doc.sequences)
    )


def _applied(sequence: SequenceInstance) -> bool:
    # The plan id names what the revert undoes; a completed sequence always has one.
    return sequence.status == SequenceStatus.COMPLETED and sequence.plan_id is not None


def revert_definition(snapshot: JobDefinition, index: int) -> JobDefinition:
    """The definition a revert job runs: the reverted sequence alone, with its target, key and
    thresholds as they were when it ran (later edits of the definition change nothing), and no
    schedule of its own."""
    return snapshot.model_copy(update={"sequences": [snapshot.sequences[index]], "schedule": None})
