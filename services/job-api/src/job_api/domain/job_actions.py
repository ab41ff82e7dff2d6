"""What an operator may do to a job instance: the status rule of each action, and by role.

The one place the API, its `allowed_actions` answer and hence the console read these rules
from; the statuses themselves come from `provisioning_common.statuses`, the permissions from
the role table of `job_api.auth.permissions`.
"""

from enum import StrEnum
from typing import Final

from provisioning_common.statuses import (
    AWAITING_DECISION_JOB_STATUSES,
    FINISHED_JOB_STATUSES,
    RESTARTABLE_JOB_STATUSES,
    JobStatus,
)

from job_api.auth.permissions import Permission, Role, role_allows
from job_api.domain.job_instance import JobInstanceSummary
from job_api.domain.reverts import revert_offered


class JobAction(StrEnum):
    VALIDATE = "validate"
    CANCEL = "cancel"
    RESTART = "restart"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    DELETE = "delete"
    # Offered on a job with a completed sequence to whom may revert (domain/reverts.py); it
    # acts on one sequence, so it has no status rule of the job's below.
    REVERT = "revert"


# The statuses at which each action is accepted.
STATUSES_ALLOWING: Final[dict[JobAction, frozenset[JobStatus]]] = {
    JobAction.VALIDATE: frozenset({JobStatus.THRESHOLD}),
    JobAction.CANCEL: AWAITING_DECISION_JOB_STATUSES,
    JobAction.RESTART: RESTARTABLE_JOB_STATUSES,
    JobAction.ARCHIVE: FINISHED_JOB_STATUSES,
    JobAction.UNARCHIVE: FINISHED_JOB_STATUSES,
    JobAction.DELETE: FINISHED_JOB_STATUSES,
}

PERMISSION_FOR: Final[dict[JobAction, Permission]] = {
    JobAction.VALIDATE: Permission.VALIDATE,
    JobAction.CANCEL: Permission.CANCEL,
    JobAction.RESTART: Permission.RESTART,
    JobAction.ARCHIVE: Permission.ARCHIVE,
    JobAction.UNARCHIVE: Permission.ARCHIVE,
    JobAction.DELETE: Permission.DELETE,
}

_PAST: Final[dict[JobAction, str]] = {
    JobAction.VALIDATE: "validated",
    JobAction.CANCEL: "canceled",
    JobAction.RESTART: "restarted",
    JobAction.ARCHIVE: "archived",
    JobAction.UNARCHIVE: "unarchived",
    JobAction.DELETE: "deleted",
}


def refusal(job_id: str, status: JobStatus, action: JobAction) -> str | None:
    """Why `action` is refused at `status`, naming the statuses that allow it; None if allowed."""
    allowed = STATUSES_ALLOWING[action]
    if status in allowed:
        return None
    wanted = " or ".join(sorted(allowed))
    return f"job {job_id} is {status}: only a job at {wanted} can be {_PAST[action]}"


def allowed_actions(status: JobStatus, archived: bool, role: Role) -> list[JobAction]:
    """The actions `role` may take on a job at `status` now, in the table's order.

    Archiving an archived job (or unarchiving one that is not) is accepted as a repeat but
    changes nothing, so it is not offered.
    """
    offered = []
    for action, statuses in STATUSES_ALLOWING.items():
        if status not in statuses or not role_allows(role, PERMISSION_FOR[action]):
            continue
        if (action is JobAction.ARCHIVE and archived) or (
            action is JobAction.UNARCHIVE and not archived
        ):
            continue
        offered.append(action)
    return offered


def offered_actions(doc: JobInstanceSummary, role: Role) -> list[JobAction]:
    """What every answer about a job instance offers the caller (reads, lists, event streams):
    the actions its status allows, and revert where one of its sequences can be reverted."""
    offered = allowed_actions(JobStatus(doc.status), doc.archived, role)
    if revert_offered(doc, role):
        offered.append(JobAction.REVERT)
    return offered
