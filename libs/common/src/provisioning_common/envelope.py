"""The CloudEvents 1.0 envelope every event and command travels in (structured JSON mode)."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid4())


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid ISO time that no UTC datetime can hold.
        raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None


# Every time in a message: with a UTC offset (a naive time cannot be compared with ours), and
# normalised to UTC at parse time, so no handler meets an out-of-range or naive time later.
UtcTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class Envelope(BaseModel):
    """Subclasses fix `type` to a Literal and `data` to their payload model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(
        default_factory=new_id, description="Unique per message; consumers dedupe on it."
    )
    source: str = Field(description="The producing service, e.g. /provisioning/sequence-runner.")
    type: str
    time: UtcTime = Field(
        default_factory=utcnow, description="When it happened, with its UTC offset (ISO 8601)."
    )
    subject: str = Field(description="The job id: the key of every message about one job.")
    datacontenttype: Literal["application/json"] = "application/json"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
