"""The job-api-projector process: folds provisioning.job-events into job_instances in MongoDB."""

import argparse
import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from provisioning_common.consuming import Received, subscribe_topic
from provisioning_common.health import serve_health
from provisioning_common.kafka import build_broker
from provisioning_common.logs import configure_logging
from provisioning_common.metrics import MESSAGES_DEAD_LETTERED
from provisioning_common.redaction import redacted_uri
from provisioning_common.topics import JOB_EVENTS, ensure_topics

from job_api.adapters.job_events import KafkaJobEvents, KafkaPosition
from job_api.adapters.job_instances import JobInstanceStore
from job_api.handlers.projection import project_raw_event
from job_api.settings import JobApiSettings

SERVICE = "job-api-projector"
PROJECTOR_GROUP = "job-api-projector"
# /livez, /readyz and /metrics, unless HEALTH_PORT says otherwise (0: none).
HEALTH_PORT = 8083

logger = logging.getLogger(__name__)


class CountedDeadLetters:
    """The projector's dead letters (sent by its fold, not the subscriber), counted in /metrics."""

    def __init__(self, sender: KafkaJobEvents) -> None:
        self._sender = sender

    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None:
        await self._sender.dead_letter(raw, source=source, reason=reason)
        MESSAGES_DEAD_LETTERED.labels(source.topic).inc()


def broker_factory(settings: JobApiSettings) -> KafkaBroker:
    # Through our JSON logs; per-message lines at DEBUG, since the fold logs what matters.
    return build_broker(
        settings.kafka, logger=logging.getLogger(f"{SERVICE}.kafka"), log_level=logging.DEBUG
    )


def app_factory(settings: JobApiSettings) -> FastStream:
    """The projector app; it connects when it starts, never before."""
    broker = broker_factory(settings)
    mongo = settings.mongo.client()
    store = JobInstanceStore(mongo[settings.mongo.database])
    events = CountedDeadLetters(KafkaJobEvents(broker, settings.kafka))
    topic = settings.kafka.topic(JOB_EVENTS)
    app = FastStream(broker, logger=logger)
    serve_health(app, broker, SERVICE, HEALTH_PORT)

    async def fold(raw: bytes, at: Received) -> bool:
        source = KafkaPosition(topic=at.topic, partition=at.partition, offset=at.offset, key=at.key)
        # A message that is not a job event is dead-lettered by the handler, with its reasons.
        await project_raw_event(raw, source=source, store=store, dead_letters=events)
        return False  # the fold logs what it did itself

    @app.on_startup
    async def subscribe() -> None:
        await ensure_topics(settings.kafka)
        base_group = settings.kafka.group_id(PROJECTOR_GROUP)
        if settings.rebuild:
            group = await store.start_rebuild(base_group, datetime.now(UTC))
            logger.warning(
                "rebuild: %s and job_rejections dropped; folding %s again from its first "
                "offset with consumer group %s",
                store.collection_name,
                topic,
                group,
            )
        else:
            group = await store.projector_group(base_group)
        await store.ensure_indexes()
        # The database away is waited out; an event that fails otherwise (a document MongoDB
        # refuses, one the fold cannot take) is dead-lettered after a few tries, so the job's
        # later events are not held up behind it.
        subscribe_topic(
            broker,
            topic=topic,
            group_id=group,
            parse=bytes,
            handle=fold,
            title=f"{SERVICE}:{topic}",
            description="Folds every job event into its job instance document.",
            policy=settings.kafka.consumer_retry_policy(),
            **settings.kafka.consumer_params(),
        )
        logger.info(
            "%s started: kafka %s, topic %s, group %s; mongo %s, database %s",
            SERVICE,
            settings.kafka.bootstrap_servers,
            topic,
            group,
            redacted_uri(settings.mongo.uri),
            settings.mongo.database,
        )

    @app.after_shutdown
    async def close_mongo() -> None:
        await mongo.close()
        logger.info("%s stopped", SERVICE)

    return app


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=SERVICE, description=__doc__)
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="Drop job_instances and fold provisioning.job-events again from its first offset, "
        "under a fresh consumer group (also PROVISIONING_REBUILD=true). Stop the other "
        "projectors first.",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    overrides: dict[str, Any] = {"rebuild": True} if args.rebuild else {}
    settings = JobApiSettings(**overrides)
    configure_logging(SERVICE, settings.log_level)
    asyncio.run(app_factory(settings).run())


if __name__ == "__main__":
    main()
