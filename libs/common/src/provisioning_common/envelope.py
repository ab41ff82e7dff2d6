"""The CloudEvents 1.0 envelope every event and command travels in (structured JSON mode)."""

from datetime import UTC, datetime
from typing import Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid4())


class Envelope(BaseModel):
    """Subclasses fix `type` to a Literal and `data` to their payload model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(
        default_factory=new_id, description="Unique per message; consumers dedupe on it."
    )
    source: str = Field(description="The producing service, e.g. /provisioning/sequence-runner.")
    type: str
    time: datetime = Field(default_factory=utcnow)
    subject: str = Field(description="The job id: the key of every message about one job.")
    datacontenttype: Literal["application/json"] = "application/json"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
