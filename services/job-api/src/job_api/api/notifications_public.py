"""What the API shows of a job's notifications: each delivery and every attempt at it."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class NotificationAttemptPublic(BaseModel):
    at: datetime
    ok: bool
    detail: str = Field(description="The receiver's answer, or why the attempt failed.")


class NotificationPublic(BaseModel):
    id: str = Field(description="<event id>:<recipient>:<channel>; the receiver sees it too.")
    event_id: str
    kind: Literal["threshold", "failed", "completed"]
    recipient: str
    channel: Literal["webhook", "email"]
    address: str = Field(description="The webhook URL or email address (never the secret).")
    status: Literal["sending", "sent", "failed"]
    created_at: datetime
    finished_at: datetime | None = None
    attempts: list[NotificationAttemptPublic]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> "NotificationPublic":
        return cls.model_validate({**doc, "id": doc["_id"]})


class NotificationsPublic(BaseModel):
    items: list[NotificationPublic]


class ScheduleFiringPublic(BaseModel):
    id: str = Field(description="The firing's job request id: schedule:<definition>:<time>.")
    at: datetime = Field(description="The firing time the schedule gave.")
    status: Literal["claimed", "requested", "skipped"]
    missed: int = Field(description="Earlier firings missed while no scheduler ran (not run).")
    job_id: str | None = None
    reason: str | None = Field(default=None, description="Why a skipped firing started no job.")
    settled_at: datetime | None = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> "ScheduleFiringPublic":
        return cls.model_validate({**doc, "id": doc["_id"]})


class ScheduleFiringsPublic(BaseModel):
    next_at: datetime | None = Field(
        default=None,
        description="The schedule's next firing (UTC), or null when the definition has none.",
    )
    items: list[ScheduleFiringPublic]
