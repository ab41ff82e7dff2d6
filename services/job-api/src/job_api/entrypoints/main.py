"""The job-api HTTP process: the REST API, the console, and the job-requests intake."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import uvicorn
from fastapi import Depends, FastAPI
from provisioning_common.logs import configure_logging
from provisioning_common.redaction import redacted_uri
from provisioning_common.topics import ensure_topics

from job_api.api import (
    api_keys,
    audit,
    definitions,
    events,
    jobs,
    me,
    reverts,
    session,
    system,
)
from job_api.api.asyncapi import asyncapi_document
from job_api.api.deadline import SubmissionDeadlineMiddleware
from job_api.api.docs import mount_docs
from job_api.api.errors import add_error_handlers
from job_api.api.limits import BodySizeLimitMiddleware
from job_api.api.queries import refuse_repeated_parameters
from job_api.bootstrap import JobApiServices, build_services
from job_api.console import router as console_router
from job_api.entrypoints.job_requests import build_intake_subscriber
from job_api.metrics import MetricsMiddleware
from job_api.settings import JobApiSettings

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("job-api")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without metadata
        return "0.0.0"


def _lifespan(
    services: JobApiServices,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    settings = services.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        created = await ensure_topics(settings.kafka)
        if created:
            logger.info("created topics %s", ", ".join(created))
        await services.ensure_indexes()
        await services.ensure_bootstrap_admin()
        build_intake_subscriber(
            services.broker,
            settings,
            definitions=services.definitions,
            job_instances=services.intake_records,
            publisher=services.job_events,
        )
        await services.broker.start()
        logger.info(
            "job-api listening on http://%s:%d; kafka %s (topic prefix %r), mongo %s, db %s",
            settings.host,
            settings.port,
            settings.kafka.bootstrap_servers,
            settings.kafka.topic_prefix,
            redacted_uri(settings.mongo.uri),
            settings.mongo.database,
        )
        try:
            yield
        finally:
            await services.broker.stop()
            await services.mongo.close()
            logger.info("job-api stopped")

    return lifespan


def app_factory(settings: JobApiSettings | None = None) -> FastAPI:
    """The FastAPI app; nothing connects until its lifespan starts."""
    settings = settings or JobApiSettings()
    services = build_services(settings)
    app = FastAPI(
        title="Provisioning jobs API",
        version=_version(),
        description="Job instances, their sequences and thresholds, and the operator's "
        "decisions on them. Authenticate with 'Authorization: Bearer <api key>'.",
        lifespan=_lifespan(services),
        # /docs is ours: FastAPI's default page loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_repeated_parameters)],
    )
    app.state.services = services
    add_error_handlers(app)
    app.state.asyncapi = asyncapi_document(settings.kafka, _version())
    # events before jobs: its /api/v1/jobs/events is not a job id of jobs' /api/v1/jobs/{id}.
    for module in (events, jobs, reverts, definitions, api_keys, audit, me, session, system):
        app.include_router(module.router)
    mount_docs(app)
    # The console (HTML shell and assets) is served by this same app, at /.
    app.include_router(console_router)
    # The last added is outermost: metrics see every answer, the size limit's 413s and the
    # deadline's 503s included.
    app.add_middleware(SubmissionDeadlineMiddleware, seconds=settings.submit_deadline_seconds)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app


def main() -> None:
    """Run the HTTP API with uvicorn on JOB_API_HOST:JOB_API_PORT; SIGTERM stops it cleanly."""
    settings = JobApiSettings()
    configure_logging("job-api", settings.log_level)
    uvicorn.run(
        app_factory(settings),
        host=settings.host,
        port=settings.port,
        # Our JSON logging, configured above, formats uvicorn's lines too; the access log
        # is written by MetricsMiddleware, which knows the route and the job id.
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
