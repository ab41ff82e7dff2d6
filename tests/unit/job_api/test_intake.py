"""Job requests accepted or rejected, from the API and as raw Kafka messages, with fakes."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from job_api.adapters.job_events import EventTooLargeError, KafkaPosition, Published
from job_api.domain.admission import (
    HandledRequest,
    accept_job_request,
    reject_malformed,
    subject_for_raw,
    validation_reason,
)
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import fold
from job_api.handlers.job_requests import (
    DuplicateRequest,
    RequestOfDeletedJob,
    intake_raw_request,
    submit_job_request,
)
from job_api.handlers.projection import project_raw_event
from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobCreated,
    JobEvent,
    JobRejected,
    JobStarted,
    JobStartedData,
    parse_job_event,
)
from provisioning_common.identifiers import is_job_id, job_id_for_request
from provisioning_common.requests import JobRequest
from pydantic import ValidationError

from tests.unit.job_api.test_projection import two_sequence_definition

REQUESTS = KafkaPosition(topic="provisioning.job-requests", partition=0, offset=12, key=b"k")


def request(**overrides: Any) -> JobRequest:
    body: dict[str, Any] = {
        "request_id": "hr-feed-2026-12-01T06:00",
        "definition_id": "hr-import",
        "inputs": {"contractors": [{"uid": "c1"}]},
        "requested_by": "hr-feed",
    }
    body.update(overrides)
    return JobRequest.model_validate(body)


class FakeDefinitions:
    def __init__(self, *definitions: JobDefinition) -> None:
        self.by_id = {d.id: d for d in definitions}

    async def get(self, definition_id: str) -> JobDefinition | None:
        return self.by_id.get(definition_id)


class FakeJobInstances:
    """The read model and the request ledger, in memory."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.folded: list[tuple[JobEvent, int | None, int | None]] = []
        self.ledger: dict[str, HandledRequest] = {}

    async def handled_request(self, request_id: str, job_id: str) -> HandledRequest | None:
        return self.ledger.get(request_id)

    async def record_request(self, request_id: str, job_id: str, at: datetime) -> bool:
        if request_id in self.ledger:
            return False
        self.ledger[request_id] = HandledRequest(request_id, job_id, published=False)
        return True

    async def request_published(self, request_id: str) -> None:
        self.ledger[request_id] = replace(self.ledger[request_id], published=True)

    async def forget_request(self, request_id: str) -> None:
        self.ledger.pop(request_id, None)

    async def get(self, job_id: str) -> JobInstance | None:
        doc = self.docs.get(job_id)
        return None if doc is None else JobInstance.from_document(doc)

    async def insert_if_absent(self, doc: JobInstance) -> bool:
        if doc.mongo_id in self.docs:
            return False
        self.docs[doc.mongo_id] = doc.to_document()
        return True

    async def apply_fold(self, event: JobEvent, partition: int | None, offset: int | None) -> Any:
        self.folded.append((event, partition, offset))
        return fold(await self.get(event.subject), event, partition, offset)


class FakeEvents:
    def __init__(self, *, too_large_for: type[Envelope] | None = None) -> None:
        self.published: list[Envelope] = []
        self.dead: list[tuple[bytes, KafkaPosition, str]] = []
        self.too_large_for = too_large_for

    async def publish_event(self, event: Envelope) -> Published:
        if self.too_large_for is not None and isinstance(event, self.too_large_for):
            raise EventTooLargeError("The message is 1200000 bytes when serialized")
        self.published.append(event)
        return Published(partition=2, offset=100 + len(self.published))

    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None:
        self.dead.append((raw, source, reason))


# ---- the decision -------------------------------------------------------------------------


def test_a_request_for_a_known_definition_creates_a_job_with_its_snapshot() -> None:
    definition = two_sequence_definition()
    result = accept_job_request(request(), "kafka", definition)

    assert isinstance(result, JobCreated)
    assert result.subject == job_id_for_request("hr-feed-2026-12-01T06:00")
    assert result.data.definition == definition
    assert result.data.inputs == {"contractors": [{"uid": "c1"}]}
    assert (result.data.origin, result.data.requested_by) == ("kafka", "hr-feed")


def test_an_unknown_definition_is_rejected_by_name() -> None:
    result = accept_job_request(request(definition_id="payroll"), "api", None)

    assert isinstance(result, JobRejected)
    assert result.subject == job_id_for_request("hr-feed-2026-12-01T06:00")
    assert result.data.reason == "definition_id: unknown job definition 'payroll'"
    assert (result.data.definition_id, result.data.origin) == ("payroll", "api")


def test_an_inline_sequence_without_inputs_is_rejected_by_name() -> None:
    result = accept_job_request(request(inputs={}), "kafka", two_sequence_definition())

    assert isinstance(result, JobRejected)
    assert "inputs.contractors" in result.data.reason
    assert "'contractors' has an inline source" in result.data.reason


def test_an_empty_list_of_inline_records_is_a_valid_input() -> None:
    result = accept_job_request(
        request(inputs={"contractors": []}), "kafka", two_sequence_definition()
    )
    assert isinstance(result, JobCreated)


def test_inputs_for_a_sequence_the_definition_lacks_are_rejected_by_name() -> None:
    inputs = {"contractors": [{"uid": "c1"}], "interns": [{"uid": "i1"}]}
    result = accept_job_request(request(inputs=inputs), "kafka", two_sequence_definition())

    assert isinstance(result, JobRejected)
    assert result.data.reason == (
        "inputs.interns: definition 'hr-import' has no sequence named 'interns'"
    )


def test_inputs_for_a_file_sequence_are_rejected() -> None:
    inputs = {"contractors": [{"uid": "c1"}], "employees": [{"uid": "e1"}]}
    result = accept_job_request(request(inputs=inputs), "kafka", two_sequence_definition())

    assert isinstance(result, JobRejected)
    assert "inputs.employees: sequence 'employees' reads a csv file" in result.data.reason


def test_every_problem_is_named_at_once() -> None:
    result = accept_job_request(request(inputs={"ghost": []}), "kafka", two_sequence_definition())
    assert isinstance(result, JobRejected)
    assert "inputs.contractors" in result.data.reason
    assert "inputs.ghost" in result.data.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"definition_id": "hr-import"}', "request_id: field required"),
        (b"{not json", "request: invalid JSON"),
        (b"[1, 2]", "request: input should be an object"),
        (
            b'{"request_id": "r1", "definition_id": "hr-import", "inputs": {"a": "x"}}',
            "inputs.a: input should be a valid array",
        ),
        (
            b'{"request_id": "r1", "definition_id": "hr-import", "colour": "red"}',
            "colour: extra inputs are not permitted",
        ),
    ],
)
def test_a_malformed_request_is_rejected_naming_the_fields(raw: bytes, expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        JobRequest.model_validate_json(raw)
    reason = validation_reason(raised.value)
    assert reason.startswith(expected), reason


def test_a_malformed_request_keeps_what_can_be_read_of_it() -> None:
    raw = b'{"request_id": "r-42", "definition_id": 7, "requested_by": "hr-feed"}'
    rejected = reject_malformed(raw, "definition_id: input should be a valid string", "kafka")

    assert rejected.subject == job_id_for_request("r-42")
    assert rejected.data.request_id == "r-42"
    assert rejected.data.definition_id is None
    assert rejected.data.requested_by == "hr-feed"


def test_a_request_without_a_request_id_gets_a_stable_subject() -> None:
    raw = b'{"definition_id": "hr-import"}'
    assert subject_for_raw(raw) == subject_for_raw(raw)
    assert subject_for_raw(raw) != subject_for_raw(b'{"definition_id": "other"}')
    assert is_job_id(subject_for_raw(b"\xff\xfe"))
    rejected = reject_malformed(raw, "request_id: field required", "kafka")
    assert rejected.subject == subject_for_raw(raw)
    assert rejected.data.request_id == ""


# ---- the handlers ---------------------------------------------------------------------------


async def test_submit_publishes_job_created_and_stores_the_queued_instance() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    result = await submit_job_request(
        request(),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )

    assert isinstance(result, JobCreated)
    assert events.published == [result]
    assert result.data.origin == "api"
    doc = instances.docs[result.subject]
    assert doc["status"] == "QUEUED"
    # Folded at the offset the broker gave: the projector will find it already folded.
    assert doc["projection"] == {"partition": 2, "offset": 101}
    assert JobInstance.from_document(doc) == fold(None, result, 2, 101)


async def test_a_duplicate_request_publishes_nothing_and_names_the_job() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    definitions = FakeDefinitions(two_sequence_definition())
    first = await submit_job_request(
        request(), definitions=definitions, job_instances=instances, publisher=events
    )
    assert isinstance(first, JobCreated)
    instances.docs[first.subject]["status"] = "RUNNING"

    again = await submit_job_request(
        request(inputs={"contractors": []}),
        definitions=definitions,
        job_instances=instances,
        publisher=events,
    )
    assert again == DuplicateRequest(job_id=first.subject, status="RUNNING")
    assert events.published == [first]


async def test_a_request_is_in_the_ledger_once_its_job_created_is_published() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    result = await submit_job_request(
        request(),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )
    assert isinstance(result, JobCreated)
    assert instances.ledger == {
        "hr-feed-2026-12-01T06:00": HandledRequest(
            "hr-feed-2026-12-01T06:00", result.subject, published=True
        )
    }


async def test_a_request_whose_job_was_deleted_is_refused_with_job_rejected() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    job_id = job_id_for_request("hr-feed-2026-12-01T06:00")
    at = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    instances.ledger["hr-feed-2026-12-01T06:00"] = HandledRequest(
        "hr-feed-2026-12-01T06:00",
        job_id,
        published=True,
        deleted_by="ops-1",
        deleted_at=at,
    )
    result = await submit_job_request(
        request(),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )
    assert isinstance(result, RequestOfDeletedJob)
    assert events.published == [result.rejected]
    assert result.reason == (
        f"request_id: 'hr-feed-2026-12-01T06:00' was already handled: it became job {job_id}, "
        "since deleted by ops-1 at 2026-12-01T07:00:00+00:00; send a new request_id to run the "
        "definition again"
    )
    assert instances.docs == {}


async def test_a_request_recorded_but_never_published_is_published_when_sent_again() -> None:
    # A crash between the ledger write and the broker's acknowledgement: nothing is lost.
    instances, events = FakeJobInstances(), FakeEvents()
    job_id = job_id_for_request("hr-feed-2026-12-01T06:00")
    instances.ledger["hr-feed-2026-12-01T06:00"] = HandledRequest(
        "hr-feed-2026-12-01T06:00", job_id, published=False
    )
    result = await submit_job_request(
        request(),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )
    assert isinstance(result, JobCreated)
    assert instances.ledger["hr-feed-2026-12-01T06:00"].published
    assert instances.docs[job_id]["status"] == "QUEUED"


async def test_a_rejected_submission_publishes_job_rejected_and_stores_nothing() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    result = await submit_job_request(
        request(definition_id="payroll"),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )
    assert isinstance(result, JobRejected)
    assert events.published == [result]
    assert instances.docs == {}


async def test_a_request_too_large_to_publish_is_rejected_with_the_reason() -> None:
    instances, events = FakeJobInstances(), FakeEvents(too_large_for=JobCreated)
    result = await submit_job_request(
        request(),
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
    )
    assert isinstance(result, JobRejected)
    assert result.data.reason.startswith("request: too large to run")
    assert events.published == [result]
    assert instances.docs == {}
    assert instances.ledger == {}


async def test_a_raw_request_becomes_a_job_from_kafka() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    raw = request().model_dump_json().encode()
    result = await intake_raw_request(
        raw,
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
        source=REQUESTS,
    )
    assert isinstance(result, JobCreated)
    assert result.data.origin == "kafka"
    assert instances.docs[result.subject]["origin"] == "kafka"
    assert events.dead == []


async def test_a_malformed_raw_request_is_rejected_and_dead_lettered() -> None:
    instances, events = FakeJobInstances(), FakeEvents()
    raw = json.dumps({"definition_id": "hr-import", "requested_by": "hr-feed"}).encode()
    result = await intake_raw_request(
        raw,
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=instances,
        publisher=events,
        source=REQUESTS,
    )
    assert isinstance(result, JobRejected)
    assert result.data.reason == "request_id: field required"
    assert result.data.definition_id == "hr-import"
    assert events.published == [result]
    assert events.dead == [(raw, REQUESTS, "request_id: field required")]
    assert instances.docs == {}


async def test_an_oversized_raw_request_is_rejected_before_parsing() -> None:
    events = FakeEvents()
    raw = request(inputs={"contractors": [{"uid": "x" * 2000}]}).model_dump_json().encode()
    result = await intake_raw_request(
        raw,
        definitions=FakeDefinitions(two_sequence_definition()),
        job_instances=FakeJobInstances(),
        publisher=events,
        source=REQUESTS,
        max_bytes=1024,
    )
    assert isinstance(result, JobRejected)
    assert result.data.reason == f"request: {len(raw)} bytes, larger than the limit of 1024 bytes"
    assert result.subject == job_id_for_request("hr-feed-2026-12-01T06:00")
    assert len(events.dead) == 1


async def test_the_projector_dead_letters_what_is_not_a_job_event() -> None:
    store, dead = FakeJobInstances(), FakeEvents()
    source = KafkaPosition(topic="provisioning.job-events", partition=1, offset=9, key=b"j")
    raw = b'{"type": "provisioning.Nonsense", "subject": "j"}'

    assert await project_raw_event(raw, source=source, store=store, dead_letters=dead) is None
    assert store.folded == []
    ((kept, where, reason),) = dead.dead
    assert (kept, where) == (raw, source)
    assert reason.startswith("not a job event: ")

    started = JobStarted(source="/t", subject="j", data=JobStartedData(attempt=1))
    await project_raw_event(
        started.model_dump_json().encode(), source=source, store=store, dead_letters=dead
    )
    assert store.folded == [(parse_job_event(started.model_dump_json()), 1, 9)]
