"""Which partition a job's messages go to: Kafka's default partitioner (murmur2 of the key).

Every message about a job is keyed by its id, so the job lives on one partition number in every
topic with the same partition count; the replica assigned that partition owns the job.
"""

from aiokafka.partitioner import murmur2


def partition_of(job_id: str, partitions: int) -> int:
    """The partition the producers (aiokafka's and Java's default partitioner) put `job_id` on."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    hashed: int = murmur2(job_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


__all__ = ["partition_of"]
