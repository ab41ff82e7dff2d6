"""Target operations: a network blip is retried with backoff, anything else fails at once."""

import pytest
from pymongo.errors import AutoReconnect, OperationFailure
from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy, with_retries

POLICY = RetryPolicy(attempts=3, backoff_seconds=0)


async def test_a_transient_error_is_retried_until_the_operation_succeeds() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise AutoReconnect("connection reset")
        return "written"

    assert await with_retries(POLICY, "write", flaky) == "written"
    assert calls == 3


async def test_a_target_unreachable_after_every_attempt_fails_with_the_reason() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise AutoReconnect("connection refused")

    with pytest.raises(TargetError, match=r"unreachable after 3 attempts \(write\): connection"):
        await with_retries(POLICY, "write", down)
    assert calls == 3


async def test_a_refusal_is_not_retried() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise OperationFailure("not authorized")

    with pytest.raises(TargetError, match="refused the write: not authorized"):
        await with_retries(POLICY, "write", refused)
    assert calls == 1
