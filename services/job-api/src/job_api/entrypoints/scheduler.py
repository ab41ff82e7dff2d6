"""The job-api-scheduler process: sends a job request for each due firing of a schedule, and
applies the retention of finished jobs (archive, then delete) as the system's own actions.

A process of its own, like the notifier: it must run exactly where its replicas agree, not in
every HTTP replica's event loop. Any number of replicas may run: a firing is claimed by a
compare-and-set in MongoDB (`schedule_state`), and its request id is derived from the definition
and the firing time, so even two claims would be one job (the request ledger).
"""

import asyncio
import logging

from faststream import FastStream
from provisioning_common.definition_options import Retention
from provisioning_common.logs import configure_logging
from provisioning_common.redaction import redacted_uri
from provisioning_common.requests import JobRequest
from provisioning_common.topics import JOB_REQUESTS, ensure_topics

from job_api.adapters.schedule_store import ScheduleStore
from job_api.bootstrap import build_services
from job_api.entrypoints.background import run_every
from job_api.handlers.retention import RetentionSweep
from job_api.handlers.schedules import Scheduler
from job_api.settings import JobApiSettings

SERVICE = "job-api-scheduler"

logger = logging.getLogger(__name__)


def app_factory(settings: JobApiSettings) -> FastStream:
    """The scheduler app; it connects when it starts, never before."""
    # The API's own services: retention archives and deletes through the operators' code path.
    services = build_services(settings)
    broker, mongo = services.broker, services.mongo
    store = ScheduleStore(services.db)
    retention = RetentionSweep(
        db=services.db,
        actions=services.job_actions,
        audit=services.audit,
        default=Retention(
            archive_after_days=settings.retention_archive_after_days,
            delete_after_days=settings.retention_delete_after_days,
        ),
    )
    topic = settings.kafka.topic(JOB_REQUESTS)

    async def request_job(request: JobRequest) -> None:
        # Keyed by the request id, as upstream systems key theirs (docs/definitions.md).
        await broker.publish(
            request.model_dump_json().encode(), topic=topic, key=request.request_id.encode()
        )

    scheduler = Scheduler(store=store, request_job=request_job)
    app = FastStream(broker, logger=logger)
    run_every(app, scheduler.tick, settings.schedule_tick_seconds, "scheduler tick failed")
    run_every(app, retention.run, settings.retention_every_minutes * 60, "retention failed")

    @app.on_startup
    async def prepare() -> None:
        await ensure_topics(settings.kafka)
        await store.ensure_indexes()

    @app.after_startup
    async def announce() -> None:
        logger.info(
            "%s started: every %.1fs; kafka %s, topic %s; mongo %s, database %s",
            SERVICE,
            settings.schedule_tick_seconds,
            settings.kafka.bootstrap_servers,
            topic,
            redacted_uri(settings.mongo.uri),
            settings.mongo.database,
        )

    @app.after_shutdown
    async def close_mongo() -> None:
        await mongo.close()
        logger.info("%s stopped", SERVICE)

    return app


def main() -> None:
    settings = JobApiSettings()
    configure_logging(SERVICE, settings.log_level)
    asyncio.run(app_factory(settings).run())


if __name__ == "__main__":
    main()
