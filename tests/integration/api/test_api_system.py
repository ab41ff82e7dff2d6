"""Health, OpenAPI, AsyncAPI, metrics, the body size limit and the audit trail's paging."""

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from job_api.entrypoints.main import app_factory
from provisioning_common.settings import MongoSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, JOB_REQUESTS

from tests.integration.api.harness import ApiHarness, insert_jobs, job_doc, threshold_sequence

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def test_health_is_ok_with_mongo_and_kafka(api: ApiHarness) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongo": True, "kafka": True}


async def test_liveness_and_readiness_probes_answer_like_the_other_processes(
    api: ApiHarness,
) -> None:
    assert (await api.client.get("/livez")).json() == {"status": "alive"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "mongo": True, "kafka": True}


async def test_health_is_503_when_the_database_and_broker_are_away(api: ApiHarness) -> None:
    unreachable = api.settings.model_copy(
        update={
            "mongo": MongoSettings(
                uri="mongodb://127.0.0.1:9", database="x", server_selection_timeout_ms=200
            )
        }
    )
    # No lifespan: the broker was never started, so it is not connected either.
    app = app_factory(unreachable)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/healthz")
        ready = await client.get("/readyz")
        alive = await client.get("/livez")
    assert (ready.status_code, alive.status_code) == (503, 200)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "mongo": False, "kafka": False}


async def test_openapi_documents_every_route_with_a_summary(api: ApiHarness) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/jobs/{job_id}/threshold/validate" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no docstring"
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_openapi_declares_the_api_key_and_the_console_session_as_security_schemes(
    api: ApiHarness,
) -> None:
    """So that /docs has an Authorize button and clients' generators know how to sign in."""
    document = (await api.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKey"]["description"],
    }
    assert (schemes["ConsoleSession"]["type"], schemes["ConsoleSession"]["in"]) == (
        "apiKey",
        "cookie",
    )
    assert schemes["ConsoleSession"]["name"] == "pj_session"
    either: list[dict[str, list[str]]] = [{"ApiKey": []}, {"ConsoleSession": []}]
    paths = document["paths"]
    for path, method in [
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs/{job_id}", "get"),
        ("/api/v1/jobs/{job_id}", "delete"),
        ("/api/v1/jobs/{job_id}/threshold/validate", "post"),
        ("/api/v1/jobs/{job_id}/restart", "post"),
        ("/api/v1/jobs/{job_id}/archive", "post"),
    ]:
        assert paths[path][method]["security"] == either, (method, path)
    # Signing in and the health check need no credentials.
    assert "security" not in paths["/healthz"]["get"]


async def test_the_docs_page_loads_swagger_ui_from_job_api_itself(api: ApiHarness) -> None:
    """Operators' networks often reach no CDN: every asset of /docs comes from us."""
    page = (await api.client.get("/docs")).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, page
    for asset in assets:
        assert asset.startswith("/"), f"/docs loads {asset} from elsewhere"
        answer = await api.client.get(asset)
        assert answer.status_code == 200, asset


async def test_asyncapi_lists_the_three_topics_and_their_messages(api: ApiHarness) -> None:
    response = await api.client.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {api.kafka.topic(t) for t in (JOB_REQUESTS, JOB_COMMANDS, JOB_EVENTS)}
    schemas = document["components"]["schemas"]
    for name in (
        "JobRequest",
        "ValidateThreshold",
        "CancelJob",
        "RestartJob",
        "JobCreated",
        "SequencePlanned",
        "SequenceBlocked",
        "JobArchived",
        "JobDeleted",
    ):
        assert name in schemas, name
    page = await api.client.get("/asyncapi")
    assert page.status_code == 200
    assert api.kafka.topic(JOB_EVENTS) in page.text
    assert "<script" not in page.text  # self-contained: nothing loaded from elsewhere


async def test_metrics_count_requests_by_route_template(api: ApiHarness) -> None:
    missing = await api.client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=api.auth("viewer"))
    assert missing.status_code == 404
    listed = await api.client.get("/api/v1/jobs", headers=api.auth("viewer"))
    assert listed.status_code == 200
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'job_api_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="404"}'
        in text
    )
    assert 'job_api_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text
    assert "job_api_job_instance_pages_total" in text


@pytest.fixture
def big_body() -> bytes:
    return b"[" + b'"x",' * 400_000 + b'"x"]'


async def test_an_oversized_body_is_413_by_its_content_length(
    api: ApiHarness, big_body: bytes
) -> None:
    assert len(big_body) > api.settings.max_request_bytes
    response = await api.client.post(
        "/api/v1/job-definitions",
        content=big_body,
        headers={**api.auth("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert str(api.settings.max_request_bytes) in response.json()["detail"]


async def test_an_oversized_streamed_body_is_413(api: ApiHarness, big_body: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is enforced on what arrives.
        for start in range(0, len(big_body), 64 * 1024):
            yield big_body[start : start + 64 * 1024]

    response = await api.client.post(
        "/api/v1/jobs",
        content=chunks(),
        headers={**api.auth("operator"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    form = await api.client.post(
        "/console/session",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 413


async def test_the_audit_trail_pages_newest_first(api: ApiHarness) -> None:
    job_ids = await insert_jobs(api, *(job_doc(status="COMPLETED") for _ in range(3)))
    for job_id in job_ids:
        archived = await api.client.post(
            f"/api/v1/jobs/{job_id}/archive", headers=api.auth("admin")
        )
        assert archived.status_code == 200
    first = await api.client.get(
        "/api/v1/audit", params={"page_size": 2}, headers=api.auth("admin")
    )
    assert first.status_code == 200
    body = first.json()
    assert body["total"] >= 3
    assert [e["job_id"] for e in body["items"]] == job_ids[::-1][:2]
    second = await api.client.get(
        "/api/v1/audit", params={"page_size": 2, "page": 2}, headers=api.auth("admin")
    )
    assert second.json()["items"][0]["job_id"] == job_ids[0]
    for entry in body["items"]:
        assert (entry["actor"], entry["action"], entry["outcome"]) == (
            "admin",
            "archive",
            "accepted",
        )
        assert entry["status_code"] == 200
    bad = await api.client.get("/api/v1/audit", params={"page_size": 0}, headers=api.auth("admin"))
    assert bad.status_code == 422


class KafkaAway:
    """The command publisher while the brokers do not answer (before or after sending)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def validate_threshold(self, *args: object, **kwargs: object) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        # No broker to send to: nothing left this process.
        (KafkaConnectionError(), "nothing was published"),
        # Sent, then no acknowledgement in time: the broker may have written it.
        (KafkaTimeoutError(), "may or may not have been published"),
    ],
)
async def test_kafka_away_is_503_with_what_to_do_and_audited(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch, error: Exception, said: str
) -> None:
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence()])
    )
    monkeypatch.setattr(api.app.state.services, "commands", KafkaAway(error))
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
    )
    assert response.status_code == 503
    assert said in response.json()["detail"]
    page = await api.client.get(
        "/api/v1/audit", params={"job_id": job_id}, headers=api.auth("admin")
    )
    (entry,) = page.json()["items"]
    assert (entry["action"], entry["outcome"], entry["status_code"]) == (
        "validate",
        "rejected",
        503,
    )
