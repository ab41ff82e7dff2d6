"""Topic names of the provisioning system and the helper that creates them."""

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from provisioning_common.settings import KafkaSettings

JOB_REQUESTS = "provisioning.job-requests"
JOB_COMMANDS = "provisioning.job-commands"
JOB_EVENTS = "provisioning.job-events"
ALL_TOPICS = (JOB_REQUESTS, JOB_COMMANDS, JOB_EVENTS)


def dead_letter_topic(topic: str) -> str:
    """Malformed messages of `topic` go here, with the reason, so the consumer can move on."""
    return f"{topic}.dlq"


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the three topics (with the configured prefix) and their dead-letter topics.

    Returns the names that were missing.
    """
    base = [settings.topic(t) for t in ALL_TOPICS]
    wanted = [*base, *(dead_letter_topic(t) for t in base)]
    admin = AIOKafkaAdminClient(**settings.to_aiokafka_params())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            # Another service may create them between our listing and our request.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name=t,
                            num_partitions=settings.topic_partitions,
                            replication_factor=settings.replication_factor,
                        )
                        for t in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


def main() -> None:
    """`python -m provisioning_common.topics`: create the topics (compose's one-shot init)."""
    import asyncio

    settings = KafkaSettings()
    missing = asyncio.run(ensure_topics(settings))
    print(f"topics on {settings.bootstrap_servers}: created {missing or 'none (all there)'}")


if __name__ == "__main__":
    main()
