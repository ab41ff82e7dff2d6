"""The one retry helper: back-off with a cap, outages waited out, other failures given up on,
and a repeated failure logged with one traceback and then short, rate-limited warnings."""

import logging

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from provisioning_common.retrying import (
    Attempts,
    GaveUpError,
    RetryPolicy,
    is_transient,
    retrying,
)
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError, WriteError


def test_the_back_off_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(first_delay_seconds=0.5, max_delay_seconds=5)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection refused"),
        ServerSelectionTimeoutError("no servers"),
        KafkaConnectionError("broker away"),
        KafkaTimeoutError(),
        ConnectionRefusedError(),
    ],
)
def test_outages_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        TypeError("naive vs aware"),
        OverflowError("date"),
        WriteError("too large", code=10334),
        MessageSizeTooLargeError(),
    ],
)
def test_bugs_and_refusals_are_not(error: Exception) -> None:
    assert not is_transient(error)


async def test_an_outage_is_waited_out_however_long_it_lasts() -> None:
    pauses: list[float] = []
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 20:  # far more than give_up_after: outages never give up
            raise AutoReconnect("connection refused")
        return "folded"

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    policy = RetryPolicy(first_delay_seconds=0.1, max_delay_seconds=2, give_up_after=3)
    assert await retrying(flaky, what="p:0", policy=policy, sleep=sleep) == "folded"
    assert calls == 21
    assert pauses[:3] == [0.1, 0.2, 0.4]
    assert max(pauses) == 2


async def test_any_other_failure_gives_up_after_the_policys_count() -> None:
    calls = 0

    async def refusing() -> None:
        nonlocal calls
        calls += 1
        raise WriteError("document too large", code=10334)

    async def sleep(seconds: float) -> None:
        pass

    with pytest.raises(GaveUpError, match="failed 5 times, last with WriteError") as caught:
        await retrying(refusing, what="p:1", policy=RetryPolicy(give_up_after=5), sleep=sleep)
    assert calls == 5
    assert isinstance(caught.value.__cause__, WriteError)


def test_a_repeated_failure_logs_one_traceback_then_rate_limited_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    attempts = Attempts(
        "provisioning.job-events:0:7",
        RetryPolicy(give_up_after=10_000, log_every_seconds=10),
        logging.getLogger("test.retrying"),
        monotonic=lambda: clock[0],
    )
    caplog.set_level(logging.DEBUG, logger="test.retrying")
    # 60 failures a second for a minute: the projector's poison message of defect 3.
    for _ in range(3600):
        clock[0] += 1 / 60
        assert attempts.failed(OverflowError("date value out of range")) is not None
    records = [r for r in caplog.records if r.name == "test.retrying"]
    assert sum(1 for r in records if r.exc_info) == 1
    assert 6 <= len(records) <= 8, [r.getMessage() for r in records]
    assert "more failures not logged" in records[-1].getMessage()


def test_the_give_up_reason_names_the_error_and_the_count() -> None:
    attempts = Attempts("t:0:1", RetryPolicy(give_up_after=2))
    assert attempts.failed(TypeError("can't compare")) is not None
    assert attempts.failed(TypeError("can't compare")) is None
    assert attempts.reason == "failed 2 times, last with TypeError: can't compare"
