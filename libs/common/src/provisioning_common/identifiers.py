"""Identifiers derived from names, so a duplicate request is the same job everywhere."""

from uuid import NAMESPACE_URL, UUID, uuid5

_JOB_NAMESPACE = uuid5(NAMESPACE_URL, "urn:provisioning:job-request")


def job_id_for_request(request_id: str) -> str:
    """A name-based UUID: every service computes the same job id with no lookup."""
    return str(uuid5(_JOB_NAMESPACE, request_id))


def is_job_id(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
