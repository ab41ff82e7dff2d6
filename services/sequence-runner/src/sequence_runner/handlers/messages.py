"""The runner's message handlers, one per message type, and the tables that name them."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from provisioning_common.commands import CancelJob, RestartJob, ValidateThreshold
from provisioning_common.envelope import Envelope
from provisioning_common.events import JobCreated, JobDeleted, SequenceBlocked, SequenceReleased

from sequence_runner.domain.transitions import cancel, on_blocked, on_released, restart, validate
from sequence_runner.handlers.engine import Engine


async def start_job(event: JobCreated, engine: Engine) -> None:
    await engine.create_run(event)


async def apply_released_plan(event: SequenceReleased, engine: Engine) -> None:
    data = event.data
    await engine.step(
        event.subject,
        lambda run: on_released(run, data.index, data.plan_id, event.source, datetime.now(UTC)),
    )


async def stop_at_threshold(event: SequenceBlocked, engine: Engine) -> None:
    data = event.data
    await engine.step(
        event.subject,
        lambda run: on_blocked(
            run, data.index, data.plan_id, data.threshold, event.source, datetime.now(UTC)
        ),
    )


async def validate_threshold(command: ValidateThreshold, engine: Engine) -> None:
    await engine.decide(command, lambda run, now: validate(run, command, now))


async def cancel_job(command: CancelJob, engine: Engine) -> None:
    await engine.decide(command, lambda run, now: cancel(run, command, now))


async def restart_job(command: RestartJob, engine: Engine) -> None:
    await engine.decide(command, lambda run, now: restart(run, command, now))


async def forget_deleted_job(event: JobDeleted, engine: Engine) -> None:
    # A deleted job (by an admin, or by retention) takes its plans with it: they hold copies
    # of the records it planned, which a retention policy promises are gone.
    await engine.plans.delete_job_plans(event.subject)
    conflicts = engine.work.reverts.conflicts
    if conflicts is not None:
        await conflicts.delete_job(event.subject)


Handler = Callable[[Any, Engine], Awaitable[None]]

# Every other event on job-events (the runner's own included) is ignored.
EVENT_HANDLERS: dict[type[Envelope], Handler] = {
    JobCreated: start_job,
    SequenceReleased: apply_released_plan,
    SequenceBlocked: stop_at_threshold,
    JobDeleted: forget_deleted_job,
}

COMMAND_HANDLERS: dict[type[Envelope], Handler] = {
    ValidateThreshold: validate_threshold,
    CancelJob: cancel_job,
    RestartJob: restart_job,
}


async def handle(table: dict[type[Envelope], Handler], message: Envelope, engine: Engine) -> bool:
    """Run the message's handler, then see to the run's pending work; False if it has none."""
    handler = table.get(type(message))
    if handler is None:
        return False
    await handler(message, engine)
    # Also what resumes a job after a crash: the redelivered message finds the work undone.
    engine.kick(message.subject)
    return True
