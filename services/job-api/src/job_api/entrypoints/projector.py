"""The job-api-projector process: folds provisioning.job-events into job_instances in MongoDB."""

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from aiokafka import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from provisioning_common.kafka import build_broker
from provisioning_common.logs import configure_logging
from provisioning_common.topics import JOB_EVENTS, ensure_topics
from pymongo.errors import ConnectionFailure, PyMongoError

from job_api.adapters.job_events import KafkaJobEvents
from job_api.adapters.job_events import KafkaPosition as SourceRecord
from job_api.adapters.job_instances import JobInstanceStore, ProjectionConflictError
from job_api.handlers.projection import project_raw_event
from job_api.settings import JobApiSettings

SERVICE = "job-api-projector"
PROJECTOR_GROUP = "job-api-projector"
# A failure that is not the database being away (a document MongoDB refuses) is retried this
# many times, then the event is dead-lettered so that the job's later events are not held up.
_ATTEMPTS_BEFORE_DEAD_LETTER = 5
_MAX_BACKOFF_SECONDS = 5.0

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
    events = KafkaJobEvents(broker, settings.kafka)
    topic = settings.kafka.topic(JOB_EVENTS)
    app = FastStream(broker, logger=logger)

    async def on_job_event(message: KafkaMessage) -> None:
        record = cast("ConsumerRecord[bytes | None, bytes | None]", message.raw_message)
        source = SourceRecord(
            topic=record.topic, partition=record.partition, offset=record.offset, key=record.key
        )
        raw = record.value or b""

        async def fold_it() -> None:
            await project_raw_event(raw, source=source, store=store, dead_letters=events)

        try:
            await retrying(fold_it, what=f"{record.topic}:{record.partition}:{record.offset}")
        except (PyMongoError, ProjectionConflictError) as error:
            await events.dead_letter(raw, source=source, reason=f"could not be projected: {error}")

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
        # Commit after the write: NACK on an error seeks back, so nothing is skipped.
        subscriber = broker.subscriber(
            topic,
            group_id=group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title=f"{SERVICE}:{topic}",
            description="Folds every job event into its job instance document.",
        )
        subscriber(on_job_event)
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


async def retrying(
    operation: Callable[[], Awaitable[T]], *, what: str, first_delay: float = 0.2
) -> T:
    """Wait out the database (retried until it answers); other failures a few times."""
    failures = 0
    delay = first_delay
    while True:
        try:
            return await operation()
        except ConnectionFailure as error:
            logger.warning("MongoDB unavailable while projecting %s, retrying: %s", what, error)
        except (PyMongoError, ProjectionConflictError) as error:
            failures += 1
            if failures >= _ATTEMPTS_BEFORE_DEAD_LETTER:
                raise
            logger.warning("projecting %s failed (attempt %d): %s", what, failures, error)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_BACKOFF_SECONDS)


def redacted_uri(uri: str) -> str:
    """The URI without its password, for logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


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
