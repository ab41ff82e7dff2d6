"""Job requests, as upstream systems publish them on provisioning.job-requests or POST them."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Origin = Literal["api", "kafka"]


class JobRequest(BaseModel):
    """A plain JSON message (not a CloudEvent): upstream systems write it with any Kafka client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(
        min_length=1,
        max_length=200,
        description="Chosen by the requester; the same id twice is the same job.",
        examples=["hr-feed-2026-12-01T06:00"],
    )
    definition_id: str = Field(min_length=1, max_length=64, examples=["hr-import"])
    inputs: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="Records of the inline sources, by sequence name.",
    )
    requested_by: str = Field(default="unknown", min_length=1, max_length=200)
    dry_run: bool = Field(
        default=False,
        description="Plan every sequence against the target as it is and apply nothing.",
    )
