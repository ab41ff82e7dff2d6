"""The runner's Kafka consumer: job events and operator commands into the handler tables."""

from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream.kafka import KafkaBroker
from provisioning_common.commands import JobCommand, parse_job_command
from provisioning_common.consuming import envelope_route, subscribe_topics
from provisioning_common.events import JobEvent, parse_job_event
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS

from sequence_runner.entrypoints.ownership import PartitionOwnership
from sequence_runner.handlers.engine import DecisionPendingError, Engine
from sequence_runner.handlers.messages import COMMAND_HANDLERS, EVENT_HANDLERS, handle

GROUP = "sequence-runner"


def subscribe_runner(broker: KafkaBroker, kafka: KafkaSettings, engine: Engine) -> None:
    """One consumer of both topics, so that the replica owning a job gets its commands too."""

    async def on_event(event: JobEvent) -> bool:
        return await handle(EVENT_HANDLERS, event, engine)

    async def on_command(command: JobCommand) -> bool:
        return await handle(COMMAND_HANDLERS, command, engine)

    events, commands = kafka.topic(JOB_EVENTS), kafka.topic(JOB_COMMANDS)

    def partition_count(topic: str) -> int | None:
        consumer = subscriber.consumer
        found = consumer.partitions_for_topic(topic) if consumer is not None else None
        return len(found) if found else None

    ownership = PartitionOwnership(engine.scheduler, events, partition_count)
    subscriber = subscribe_topics(
        broker,
        routes={
            # Starts jobs and applies or stops planned sequences on the guard's word.
            events: envelope_route(parse_job_event, on_event),
            # A command can overtake the guard's decision it answers (another topic): wait for
            # it, for at most the engine's decision_wait_seconds (by the command's time), and in
            # any case no longer than the subscriber's MAX_WAIT_SECONDS (by our clock).
            commands: envelope_route(
                parse_job_command, on_command, expected_waits=(DecisionPendingError,)
            ),
        },
        group_id=kafka.group_id(GROUP),
        title=f"{GROUP}:{events},{commands}",
        description="Starts jobs, applies or stops planned sequences on the guard's word, and "
        "validates, cancels and restarts jobs for operators: the jobs of its partitions only.",
        policy=kafka.consumer_retry_policy(),
        # The same partition numbers of both topics to one member: a job's events and commands.
        partition_assignment_strategy=(RangePartitionAssignor,),
        listener=ownership,
        **kafka.consumer_params(),
    )
