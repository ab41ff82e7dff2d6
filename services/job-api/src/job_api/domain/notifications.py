"""Which job events tell a definition's recipients, what they are told, and how it is signed."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from provisioning_common.definition_options import NotifyOn
from provisioning_common.events import JobCompleted, JobEvent, JobFailed, SequenceBlocked

SIGNATURE_HEADER = "X-Provisioning-Signature"
EVENT_ID_HEADER = "X-Provisioning-Event-Id"
DELIVERY_HEADER = "X-Provisioning-Delivery"

_STATUS: dict[NotifyOn, str] = {
    "threshold": "THRESHOLD",
    "failed": "FAILED",
    "completed": "COMPLETED",
}


def notice_kind(event: JobEvent) -> NotifyOn | None:
    """The stop an event announces, or None for an event nobody is told about."""
    if isinstance(event, SequenceBlocked):
        return "threshold"
    if isinstance(event, JobFailed):
        return "failed"
    if isinstance(event, JobCompleted):
        return "completed"
    return None


@dataclass(frozen=True)
class JobContext:
    """What the notifier kept of a job's JobCreated: whom to tell, about what, and names."""

    job_id: str
    definition_id: str
    definition_name: str
    sequence_names: list[str]
    recipients: list[dict[str, Any]]
    notify_on: list[str]
    dry_run: bool = False


def job_link(console_base_url: str, job_id: str) -> str:
    return f"{console_base_url.rstrip('/')}/#/jobs/{job_id}"


def notice_body(
    event: JobEvent, kind: NotifyOn, job: JobContext, console_base_url: str
) -> dict[str, Any]:
    """The JSON a webhook receives (and the facts an email states)."""
    body: dict[str, Any] = {
        "event_id": event.id,
        "kind": kind,
        "status": _STATUS[kind],
        "time": event.time.isoformat(),
        "job_id": job.job_id,
        "definition_id": job.definition_id,
        "definition_name": job.definition_name,
        "dry_run": job.dry_run,
        "link": job_link(console_base_url, job.job_id),
    }
    if isinstance(event, SequenceBlocked):
        index = event.data.index
        hit = event.data.threshold
        body["sequence"] = {"index": index, "name": _name(job, index)}
        body["threshold"] = hit.model_dump(mode="json")
        body["plan_id"] = event.data.plan_id
    elif isinstance(event, JobFailed):
        body["reason"] = event.data.reason
        if event.data.index is not None:
            body["sequence"] = {"index": event.data.index, "name": _name(job, event.data.index)}
    return body


def _name(job: JobContext, index: int) -> str | None:
    return job.sequence_names[index] if 0 <= index < len(job.sequence_names) else None


def canonical_json(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: a receiver checks the signature over what it read."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, payload: bytes) -> str:
    """`sha256=<hex>` over the body, as GitHub-style receivers expect it."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def email_message(body: dict[str, Any], *, sender: str, to: str) -> EmailMessage:
    """A plain-text email saying what stopped, why, and where to look."""
    what = {
        "THRESHOLD": "stopped at a threshold and waits for an operator",
        "FAILED": "failed",
        "COMPLETED": "completed",
    }[body["status"]]
    dry = " (dry run)" if body.get("dry_run") else ""
    lines = [f"Job {body['job_id']} of {body['definition_name']}{dry} {what}.", ""]
    sequence = body.get("sequence")
    if sequence:
        lines.append(f"Sequence: {sequence['name'] or sequence['index']}")
    hit = body.get("threshold")
    if hit:
        lines.append(
            f"Threshold: {hit['action']} {hit['limit']} {hit['limit_value']:g}, "
            f"planned {hit['actual']}"
        )
    if body.get("reason"):
        lines.append(f"Reason: {body['reason']}")
    lines += ["", f"Open the job: {body['link']}", "", f"Event {body['event_id']}"]
    message = EmailMessage()
    message["Subject"] = f"[provisioning] {body['definition_id']}: job {body['status']}{dry}"
    message["From"] = sender
    message["To"] = to
    message.set_content("\n".join(lines))
    return message
