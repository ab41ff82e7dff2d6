"""The query models of the routes: what they accept, and the 422 for a mistyped parameter."""

import pytest
from job_api.api.queries import (
    UNKNOWN_QUERY_PARAMETER,
    AuditQuery,
    JobInstancesQuery,
    NoQuery,
    PageQuery,
)
from pydantic import ValidationError


def test_an_unknown_parameter_is_refused_naming_it_and_what_the_call_accepts() -> None:
    with pytest.raises(ValidationError) as caught:
        JobInstancesQuery.model_validate({"stauts": "FAILED", "page_size": "20"})
    (error,) = caught.value.errors()
    assert error["type"] == UNKNOWN_QUERY_PARAMETER
    assert error["msg"] == (
        "unknown query parameter(s): stauts; this call accepts: archived, created_from, "
        "created_to, cursor, definition_id, page, page_size, sort, status"
    )


def test_a_call_without_query_parameters_refuses_any() -> None:
    assert NoQuery.model_validate({}) == NoQuery()
    with pytest.raises(
        ValidationError, match="unknown query parameter\\(s\\): a, b; this call accepts: none"
    ):
        NoQuery.model_validate({"b": "1", "a": "2"})


def test_each_model_knows_only_its_own_parameters() -> None:
    """A page of the audit trail takes a job id; the pages of definitions do not."""
    assert AuditQuery.model_validate({"job_id": "6f0c7d8e-1f1e-4a57-9d1e-2b1c1e0c9a11"}).job_id
    with pytest.raises(ValidationError, match="job_id"):
        PageQuery.model_validate({"job_id": "6f0c7d8e-1f1e-4a57-9d1e-2b1c1e0c9a11"})


def test_blank_dates_are_no_filter_and_numbers_are_refused() -> None:
    assert JobInstancesQuery.model_validate({"created_from": ""}).created_from is None
    with pytest.raises(ValidationError, match="ISO 8601"):
        JobInstancesQuery.model_validate({"created_from": "2026"})
