"""Which jobs this runner replica works on: those of the partitions its consumer is assigned.

Every message about a job is keyed by the job id, so a job lives on one partition number in
`job-events` and `job-commands` (same partition count), and the runner's single consumer of both
topics is assigned the same numbers of each (`RangePartitionAssignor`). The replica assigned
partition p plans, applies and takes the commands of the jobs on p, and no other does.
"""

import logging
from collections.abc import Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition
from provisioning_common.partitions import partition_of

from sequence_runner.handlers.scheduler import WorkScheduler

logger = logging.getLogger(__name__)


class PartitionOwnership(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """The consumer's rebalance listener: hands jobs over when partitions move between replicas.

    aiokafka rebalances eagerly: every rebalance first revokes all of a replica's partitions,
    then assigns its new set, which often gives the same ones back.

    - revoked: every write of every job is held until the assignment, and the work of the jobs
      on the lost partitions is stopped before the consumer rejoins the group, so the next
      owner never works on a job at the same time as this one — except planning still reading
      its source and target, which writes nothing and is kept;
    - assigned: kept planning of a job whose partition went to another replica is stopped, the
      rest goes on; the runs of the gained partitions left with work or unsent events are
      resumed from their stored phase.
    """

    def __init__(
        self,
        scheduler: WorkScheduler,
        topic: str,
        partition_count: Callable[[str], int | None],
    ) -> None:
        self._scheduler = scheduler
        self._topic = topic
        self._partition_count = partition_count
        self.partitions: int | None = None
        self.owned: frozenset[int] = frozenset()
        scheduler.owns = self.owns

    def owns(self, job_id: str) -> bool:
        if not self.partitions or not self.owned:
            return False
        return partition_of(job_id, self.partitions) in self.owned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == self._topic}
        self.owned = self.owned - lost
        # Before anything awaits: no job's work writes from here to the assignment.
        self._scheduler.hold_writes()
        stopped = await self._scheduler.stop_unowned(keep_reading=True)
        kept = self._scheduler.kept_through_rebalance()
        logger.info(
            "partitions %s of %s revoked; work stopped on %d job(s): %s; planning kept on %d "
            "job(s) until the assignment: %s",
            sorted(lost),
            self._topic,
            len(stopped),
            ", ".join(stopped) or "none",
            len(kept),
            ", ".join(kept) or "none",
        )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.partitions = self._partition_count(self._topic)
        self.owned = frozenset(tp.partition for tp in assigned if tp.topic == self._topic)
        others = {tp.partition for tp in assigned if tp.topic != self._topic}
        if others != self.owned:
            # Topics with different partition counts: a job's commands would reach a replica
            # that does not own the job. Its commands are still applied safely (version checks).
            logger.warning(
                "assigned partitions %s of the other topics differ from %s of %s: give the "
                "runner's topics the same partition count",
                sorted(others),
                sorted(self.owned),
                self._topic,
            )
        # Kept planning of jobs that moved away stops here, before it wrote anything.
        moved = await self._scheduler.stop_unowned()
        kept = self._scheduler.kept_through_rebalance()
        resumed = await self._scheduler.resume_pending() if self.owned else 0
        # No await from here to the log line: work let go on logs only after it.
        self._scheduler.release_writes()
        logger.info(
            "owning partitions %s of %s (%s partitions); resuming %d run(s) left with work "
            "or unsent events; planning kept through the rebalance goes on for %d job(s), "
            "stopped for %d that moved: %s",
            sorted(self.owned),
            self._topic,
            self.partitions,
            resumed,
            len(kept),
            len(moved),
            ", ".join(moved) or "none",
        )
