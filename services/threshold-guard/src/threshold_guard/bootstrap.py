"""Composition root of the threshold guard: builds the broker, publisher and app from settings."""

import logging

from faststream import FastStream
from faststream.kafka import KafkaBroker
from provisioning_common.kafka import build_broker
from provisioning_common.topics import JOB_EVENTS, ensure_topics

from threshold_guard.adapters.kafka import KafkaEventPublisher
from threshold_guard.entrypoints.consumer import GROUP, subscribe_to_job_events
from threshold_guard.settings import GuardSettings

logger = logging.getLogger("threshold_guard")


def broker_factory(settings: GuardSettings) -> KafkaBroker:
    broker = build_broker(
        settings.kafka,
        # Our JSON log lines; faststream's per-message lines only at DEBUG.
        logger=logging.getLogger("threshold_guard.broker"),
        log_level=logging.DEBUG,
    )
    publisher = KafkaEventPublisher(broker, settings.kafka.topic(JOB_EVENTS))
    subscribe_to_job_events(broker, settings.kafka, publisher)
    return broker


def app_factory(settings: GuardSettings) -> FastStream:
    broker = broker_factory(settings)

    async def prepare() -> None:
        logger.info(
            "threshold-guard connecting to kafka %s (topic %s, group %s)",
            settings.kafka.bootstrap_servers,
            settings.kafka.topic(JOB_EVENTS),
            settings.kafka.group_id(GROUP),
        )
        await ensure_topics(settings.kafka)

    return FastStream(broker, logger=logger, on_startup=[prepare])
