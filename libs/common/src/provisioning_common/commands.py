"""Commands on provisioning.job-commands, imperative, published by job-api for an operator."""

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from provisioning_common.envelope import Envelope, Payload
from provisioning_common.statuses import JobStatus


class CommandData(Payload):
    command_id: str
    requested_by: str = Field(description="The API key name of the operator.")
    expected_status: JobStatus | None = Field(
        default=None,
        description="The job status the operator acted on; the command is refused if the job "
        "has moved on since, so of two racing decisions (validate, cancel) exactly one wins.",
    )


class ValidateThresholdData(CommandData):
    plan_id: str | None = Field(
        default=None,
        description="The plan the operator looked at; refused if the job is blocked on another.",
    )


class ValidateThreshold(Envelope):
    type: Literal["provisioning.ValidateThreshold"] = "provisioning.ValidateThreshold"
    data: ValidateThresholdData


class CancelJob(Envelope):
    type: Literal["provisioning.CancelJob"] = "provisioning.CancelJob"
    data: CommandData


class RestartJob(Envelope):
    type: Literal["provisioning.RestartJob"] = "provisioning.RestartJob"
    data: CommandData


JobCommand = Annotated[ValidateThreshold | CancelJob | RestartJob, Field(discriminator="type")]

JOB_COMMAND_ADAPTER: TypeAdapter[JobCommand] = TypeAdapter(JobCommand)


def parse_job_command(raw: bytes | str) -> JobCommand:
    return JOB_COMMAND_ADAPTER.validate_json(raw)
