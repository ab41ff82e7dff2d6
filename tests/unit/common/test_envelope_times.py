"""Envelope times are parsed aware and in range, or the message is refused at parse time."""

import json

import pytest
from provisioning_common.commands import CancelJob, CommandData, parse_job_command
from provisioning_common.events import JobRejected, JobRejectedData, parse_job_event
from pydantic import ValidationError


def _with_time(message: str, time: str) -> str:
    fields = json.loads(message)
    fields["time"] = time
    return json.dumps(fields)


def _cancel() -> str:
    return CancelJob(
        source="/t", subject="j", data=CommandData(command_id="c", requested_by="op")
    ).model_dump_json()


def _rejected() -> str:
    data = JobRejectedData(request_id="r", origin="kafka", reason="no")
    return JobRejected(source="/t", subject="j", data=data).model_dump_json()


@pytest.mark.parametrize(
    ("time", "said"),
    [
        ("2026-03-01T12:00:00", "timezone"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("9999-12-31T23:30:00-01:00", "out of range"),
    ],
)
def test_a_time_without_offset_or_out_of_range_is_a_parse_error(time: str, said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        parse_job_command(_with_time(_cancel(), time))
    with pytest.raises(ValidationError, match=said):
        parse_job_event(_with_time(_rejected(), time))


def test_a_time_with_an_offset_is_read_in_utc() -> None:
    command = parse_job_command(_with_time(_cancel(), "2026-03-01T13:00:00+01:00"))
    assert command.time.isoformat() == "2026-03-01T12:00:00+00:00"
