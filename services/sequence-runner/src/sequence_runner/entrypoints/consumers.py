"""The runner's Kafka subscribers: job events and operator commands into the handler tables."""

from faststream.kafka import KafkaBroker
from provisioning_common.commands import JobCommand, parse_job_command
from provisioning_common.consuming import subscribe_envelopes
from provisioning_common.events import JobEvent, parse_job_event
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS

from sequence_runner.handlers.engine import DecisionPendingError, Engine
from sequence_runner.handlers.messages import COMMAND_HANDLERS, EVENT_HANDLERS, handle

GROUP = "sequence-runner"


def subscribe_runner(broker: KafkaBroker, kafka: KafkaSettings, engine: Engine) -> None:
    async def on_event(event: JobEvent) -> bool:
        return await handle(EVENT_HANDLERS, event, engine)

    async def on_command(command: JobCommand) -> bool:
        return await handle(COMMAND_HANDLERS, command, engine)

    subscribe_envelopes(
        broker,
        topic=kafka.topic(JOB_EVENTS),
        group_id=kafka.group_id(GROUP),
        parse=parse_job_event,
        handle=on_event,
        title=f"{GROUP}:{kafka.topic(JOB_EVENTS)}",
        description="Starts jobs and applies or stops planned sequences on the guard's word.",
        policy=kafka.consumer_retry_policy(),
        **kafka.consumer_options(),
    )
    subscribe_envelopes(
        broker,
        topic=kafka.topic(JOB_COMMANDS),
        group_id=kafka.group_id(GROUP),
        parse=parse_job_command,
        handle=on_command,
        title=f"{GROUP}:{kafka.topic(JOB_COMMANDS)}",
        description="Validates, cancels and restarts jobs for operators.",
        policy=kafka.consumer_retry_policy(),
        **kafka.consumer_options(),
        # A command can overtake the guard's decision it answers (another topic): wait for it,
        # for at most the engine's decision_wait_seconds (by the command's time), and in any
        # case no longer than the subscriber's MAX_WAIT_SECONDS (by our clock).
        expected_waits=(DecisionPendingError,),
    )
