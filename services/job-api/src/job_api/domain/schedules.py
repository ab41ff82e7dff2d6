"""When a definition's schedule fires: the latest firing due, the ones missed, and the request
id every replica derives for a firing, so the job-api's request ledger makes it one job."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from provisioning_common.definition_options import Schedule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Missed firings are counted for the operator, not run: the count stops here.
MISSED_COUNT_LIMIT = 1000


@dataclass(frozen=True)
class DueFiring:
    at: datetime
    # Firings after the last one run and before `at`, skipped because the service was down:
    # a missed firing is run once (as `at`), not N times.
    missed: int


def latest_firing(schedule: Schedule, now: datetime) -> datetime:
    """The schedule's last firing at or before `now`, in UTC."""
    if schedule.interval_minutes is not None:
        step = timedelta(minutes=schedule.interval_minutes)
        return _EPOCH + step * ((now - _EPOCH) // step)
    assert schedule.cron is not None
    local = now.astimezone(ZoneInfo(schedule.timezone)) + timedelta(microseconds=1)
    # cronsim walks back strictly before its start, hence the microsecond.
    return next(CronSim(schedule.cron, local, reverse=True)).astimezone(UTC)


def next_firing(schedule: Schedule, now: datetime) -> datetime:
    """The schedule's first firing strictly after `now`, in UTC: what operators see as next."""
    if schedule.interval_minutes is not None:
        return latest_firing(schedule, now) + timedelta(minutes=schedule.interval_minutes)
    assert schedule.cron is not None
    # Walking forward, cronsim yields the first match strictly after its start.
    return next(CronSim(schedule.cron, now.astimezone(ZoneInfo(schedule.timezone)))).astimezone(UTC)


def due_firing(schedule: Schedule, after: datetime, now: datetime) -> DueFiring | None:
    """The firing to run now, if the schedule fired since `after` (the last firing run, or the
    moment the scheduler first saw the schedule)."""
    latest = latest_firing(schedule, now)
    if latest <= after:
        return None
    return DueFiring(at=latest, missed=_firings_between(schedule, after, latest))


def _firings_between(schedule: Schedule, after: datetime, latest: datetime) -> int:
    """How many firings fall strictly between `after` and `latest`."""
    if schedule.interval_minutes is not None:
        step = timedelta(minutes=schedule.interval_minutes)
        first = latest_firing(schedule, after) + step
        return min(max((latest - first) // step, 0), MISSED_COUNT_LIMIT)
    assert schedule.cron is not None
    count = 0
    for firing in CronSim(schedule.cron, after.astimezone(ZoneInfo(schedule.timezone))):
        if firing.astimezone(UTC) >= latest or count >= MISSED_COUNT_LIMIT:
            break
        count += 1
    return count


def firing_request_id(definition_id: str, firing: datetime) -> str:
    """The same for every replica and restart: the ledger turns a repeat into the same job."""
    return f"schedule:{definition_id}:{firing.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
