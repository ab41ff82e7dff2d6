"""A job's partition, as the runner computes it, is the one the producers put its messages on."""

import pytest
from aiokafka.partitioner import DefaultPartitioner
from provisioning_common.partitions import partition_of


@pytest.mark.parametrize("partitions", [1, 3, 6, 7])
def test_partition_of_matches_the_producers_default_partitioner(partitions: int) -> None:
    everyone = list(range(partitions))
    for n in range(200):
        job_id = f"job-{n:04d}-5d1c"
        assert partition_of(job_id, partitions) == DefaultPartitioner()(
            job_id.encode(), everyone, everyone
        )


def test_partition_of_matches_the_java_client_on_a_known_key() -> None:
    # Utils.murmur2("21".getBytes()) = -973932308 in the Java client: positive part mod 6 is 2.
    assert partition_of("21", 6) == (-973932308 & 0x7FFFFFFF) % 6


def test_no_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_of("job", 0)
