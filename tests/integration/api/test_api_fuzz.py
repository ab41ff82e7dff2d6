"""Property-based tests of the REST API against its own OpenAPI document (schemathesis).

Schemathesis turns every operation of /openapi.json into hypothesis strategies: requests
that follow the schema (positive) and requests that break it (negative). Each one is sent to
the real app of the harness (its lifespan run, on the real broker and database), first with
the admin key, then with the viewer key, and each answer must be:

- never a 5xx;
- a status code, content type, headers and body that the document gives for that operation;
- a 4xx for a request that breaks the schema.

Part of the valid requests on a job or a definition name one that exists (a job at each stage,
with planned changes to page through), so the decisions, archive and delete run their real
code, not only their 404.

Bounded and reproducible: a fixed number of examples per operation and mode (about 750
requests, 20 to 35 s on the busy 2-core development machine), derandomized (the same
requests on every run), no shrinking and no example database.
"""

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from job_api.entrypoints.main import app_factory
from job_api.settings import JobApiSettings
from provisioning_common.events import PlanCounts
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.control import SkipTest
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.domain.records import ChangeAction, PlannedChange
from sequence_runner.handlers.ports import StoredPlan

from tests.integration.api.harness import (
    ApiHarness,
    definition_body,
    insert_jobs,
    job_doc,
    sequence_doc,
    threshold_sequence,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

EXAMPLES = 10
# Every request goes out twice: as admin (who may do everything) and as viewer (refused all
# but reading), which must get a documented 403 before any 404, 409 or 422 of the call itself.
ROLES = ("admin", "viewer")
# No per-example deadline: on a shared 2-core machine one answer took 4 s under load, and a
# timing failure says nothing about the API. A hang still fails, by the test's timeout.
DEADLINE = None
BASE_URL = "http://job-api.test"

# The document is generated from the code, so an app that is never started gives the same one.
DOCUMENT = app_factory(JobApiSettings()).openapi()

Operation = APIOperation[Any, Any, Any, Any]


def _operations(mode: GenerationMode) -> dict[str, Operation]:
    # An explicit config: no schemathesis.toml is looked for. One mode per schema, so that an
    # operation without anything to break is skipped in negative mode instead of failing.
    config = schemathesis.Config.from_dict({"generation": {"mode": mode.value}})
    schema = schemathesis.openapi.from_dict(DOCUMENT, config=config)
    operations: dict[str, Operation] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is broken: nothing to fuzz
        operations[result.ok().label] = result.ok()
    return operations


OPERATIONS = {mode: _operations(mode) for mode in GenerationMode}
# Every operation of the document is fuzzed but the two event streams: an in-process ASGI
# client waits for the end of a body, and a stream lasts a minute by design. Their answers
# before streaming (401, 404, 422) are tested in test_api_event_streams.py, and what they
# stream against a running job-api in tests/e2e/test_console_pages.py. The calls that could
# lock the run out cannot hit: DELETE /api/v1/api-keys/{key_id} would need the id of the key
# in use (a UUID nobody generates), and that key is the last admin key anyway (409).
EVENT_STREAMS = frozenset({"GET /api/v1/jobs/events", "GET /api/v1/jobs/{job_id}/events"})
LABELS = sorted(set(OPERATIONS[GenerationMode.POSITIVE]) - EVENT_STREAMS)
# Operations a request cannot break: no parameters and no body, or (the api key id) a path
# parameter any string fits. schemathesis has no negative case for them; their positive run
# covers them. Listed rather than skipped, so that nothing in the suite is skipped and a new
# operation of this kind fails loudly until it is named here.
NOTHING_TO_BREAK = frozenset(
    {
        "DELETE /api/v1/api-keys/{key_id}",
        "DELETE /console/session",
        "GET /api/v1/api-keys",
        "GET /api/v1/me",
        "GET /asyncapi",
        "GET /asyncapi.json",
        "GET /console/session",
        "GET /healthz",
        "GET /livez",
        "GET /metrics",
        "GET /readyz",
    }
)
RUNS = [
    (label, mode)
    for label in LABELS
    for mode in GenerationMode
    if not (mode is GenerationMode.NEGATIVE and label in NOTHING_TO_BREAK)
]

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    derandomize=True,
    database=None,
    # No shrinking: a failure is reported as found, with its curl line, in bounded time.
    phases=[Phase.generate],
    # Bodies of definitions are large to generate; the filter is schemathesis's own.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

PLAN = "plan-fuzz"
ACTIONS: list[ChangeAction] = ["create", "update", "delete", "delete"]
DEFINITION = "fuzz-def"


@pytest.fixture(scope="module")
async def existing(api: ApiHarness) -> dict[str, list[Any]]:
    """Path parameters that name something: a job at each stage, its sequence, a definition."""
    job_ids = await insert_jobs(
        api,
        job_doc(status="COMPLETED"),
        job_doc(status="COMPLETED", archived=True),
        job_doc(status="FAILED"),
        job_doc(status="THRESHOLD", sequences=[threshold_sequence(plan_id=PLAN)]),
        job_doc(status="VALIDATED", sequences=[threshold_sequence(plan_id=PLAN)]),
        job_doc(status="RUNNING", sequences=[sequence_doc(0, "employees", "RUNNING")]),
        job_doc(status="QUEUED", definition_id=DEFINITION),
    )
    await MongoPlanRepository(api.db).save(
        StoredPlan(
            plan_id=PLAN,
            job_id=job_ids[3],
            index=0,
            attempt=1,
            counts=PlanCounts(create=1, update=1, delete=2, unchanged=0, target_size=3),
            created_at=datetime.now(UTC),
            digest="fuzz",
        ),
        [PlannedChange(seq, action, f"u{seq}", None, None) for seq, action in enumerate(ACTIONS)],
    )
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(DEFINITION), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    return {"job_id": job_ids, "index": [0], "definition_id": [DEFINITION]}


def _cases(
    operation: Operation, mode: GenerationMode, existing: dict[str, list[Any]]
) -> st.SearchStrategy[Case[Operation]]:
    generated = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters if p.name in existing]
    # A negative case must break something; with its id fixed, there may be nothing left.
    if not names or mode is GenerationMode.NEGATIVE:
        return generated
    named = st.fixed_dictionaries({name: st.sampled_from(existing[name]) for name in names})
    chosen = named.flatmap(
        lambda fixed: operation.as_strategy(generation_mode=mode, path_parameters=fixed)
    )
    return st.one_of(chosen, generated)


def _on_the_wire(case: Case[Operation]) -> requests.PreparedRequest:
    """The request as schemathesis would send it: serialized, encoded, with its headers."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    return requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("label", "mode"), RUNS, ids=[f"{lb}-{m.value}" for lb, m in RUNS])
@FUZZ
@given(data=st.data())
async def test_every_answer_is_documented_and_no_request_breaks_the_api(
    api: ApiHarness,
    existing: dict[str, list[Any]],
    label: str,
    mode: GenerationMode,
    data: st.DataObject,
) -> None:
    operation = OPERATIONS[mode][label]
    try:
        case = data.draw(_cases(operation, mode, existing), label="case")
    except SkipTest as nothing_to_break:
        raise AssertionError(
            f"{label}: {nothing_to_break}; add it to NOTHING_TO_BREAK if a request truly "
            "cannot break it"
        ) from None
    request = _on_the_wire(case)
    body = request.body.encode() if isinstance(request.body, str) else request.body
    assert body is None or isinstance(body, bytes)
    for role in ROLES:
        note(f"sent with the {role} key")
        headers: dict[str, Any] = {**request.headers, **api.auth(role)}
        # A client per request: no cookie of one request (a console sign-in) leaks into another.
        async with api.new_client() as client:
            response = await client.request(
                request.method or "GET", request.url or BASE_URL, headers=headers, content=body
            )
        case.validate_response(response, checks=CHECKS)
