"""What a definition may carry besides its sequences: who is told, when it runs by itself, and
how long its finished jobs are kept."""

from datetime import UTC, datetime
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

RecipientName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Names the recipient; its webhook secret is configured under this name "
        "(PROVISIONING_WEBHOOK_SECRETS), never stored in the definition.",
    ),
]
NotifyOn = Literal["threshold", "failed", "completed"]
DEFAULT_NOTIFY_ON: tuple[NotifyOn, ...] = ("threshold", "failed")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Recipient(_Frozen):
    """Someone told when a job of the definition stops: by webhook, by email, or both."""

    name: RecipientName
    webhook_url: AnyHttpUrl | None = Field(
        default=None, examples=["https://hooks.example.com/provisioning"]
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        examples=["iam-team@example.com"],
    )

    @model_validator(mode="after")
    def _has_a_channel(self) -> Self:
        if self.webhook_url is None and self.email is None:
            raise ValueError("give a webhook_url, an email or both")
        return self


class Schedule(_Frozen):
    """A cron expression in a time zone, or a fixed interval: exactly one of them."""

    cron: str | None = Field(
        default=None,
        max_length=200,
        description="Five fields (minute hour day month weekday), as cron reads them.",
        examples=["*/30 * * * *"],
    )
    timezone: str = Field(
        default="UTC", description="IANA zone the cron expression is read in.", examples=["UTC"]
    )
    interval_minutes: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 60,
        description="Every N minutes, counted from 1970-01-01T00:00Z (same firings everywhere).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if (self.cron is None) == (self.interval_minutes is None):
            raise ValueError("give either cron or interval_minutes")
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(UTC))
            except CronSimError as error:
                raise ValueError(f"cron: {error}") from None
        return self


class Retention(_Frozen):
    """How long this definition's finished jobs are kept (else the system default)."""

    archive_after_days: int = Field(ge=1, le=3650, description="Finished jobs are archived.")
    delete_after_days: int = Field(
        ge=1, le=3650, description="Archived jobs (and their plans) are deleted."
    )
