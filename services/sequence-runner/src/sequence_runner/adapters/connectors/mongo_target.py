"""MongoDB target: one collection of the target repository database, one document per record."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from provisioning_common.retrying import GaveUpError, retrying
from provisioning_common.retrying import RetryPolicy as BackOff
from pymongo import ASCENDING, DeleteOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, PyMongoError

from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.domain.records import Key, PlannedChange, TargetRules

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_seconds: float = 0.5


async def with_retries(policy: RetryPolicy, what: str, operation: Callable[[], Awaitable[T]]) -> T:
    """Retry what a network blip can fail; anything else fails the sequence at once."""
    try:
        return await retrying(
            operation,
            what=f"target repository {what}",
            policy=BackOff(
                first_delay_seconds=policy.backoff_seconds,
                give_up_after=1,
                transient_give_up_after=policy.attempts,
            ),
            logger=logger,
        )
    except GaveUpError as gave_up:
        error = gave_up.__cause__
        if isinstance(error, ConnectionFailure):
            raise TargetError(
                f"target repository unreachable after {policy.attempts} attempts ({what}): {error}"
            ) from error
        if isinstance(error, PyMongoError):
            raise TargetError(f"target repository refused the {what}: {error}") from error
        assert error is not None
        raise error from None  # not MongoDB's: the caller's to handle, as it came


class MongoTargetConnector:
    """Each record is stored with `_id` = its key value and keeps its key attribute."""

    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], key: str, retry: RetryPolicy
    ) -> None:
        self._collection = collection
        self._key = key
        self._retry = retry
        self.rules = TargetRules()

    async def prepare(self) -> None:
        name = f"{self._key}_unique"

        async def ensure_index() -> None:
            # Looked up first: on every apply the index is there already, and a read costs
            # the server far less than createIndexes, a write on the apply's critical path.
            if name in await self._collection.index_information():
                return
            # Sparse: documents written by other means without the attribute do not collide.
            await self._collection.create_index(
                [(self._key, ASCENDING)], unique=True, sparse=True, name=name
            )

        await with_retries(self._retry, f"unique index on {self._key!r}", ensure_index)

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        records = await with_retries(self._retry, "read", self._read_everything)
        for record in records:
            yield record

    async def _read_everything(self) -> list[dict[str, Any]]:
        return [document async for document in self._collection.find({})]

    async def read_keys(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """By the key attribute, or by `_id` for a record without one (as `apply` finds it)."""
        wanted = list(keys)

        async def read() -> list[dict[str, Any]]:
            where = {"$or": [{self._key: {"$in": wanted}}, {"_id": {"$in": wanted}}]}
            return [document async for document in self._collection.find(where)]

        found: dict[Key, dict[str, Any]] = {}
        for document in await with_retries(self._retry, "read", read):
            key: Any = document.get(self._key)
            if key is None:
                key = document.get("_id")
            found[key] = document
        return found

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        if not changes:
            return
        operations: list[UpdateOne | DeleteOne] = []
        for change in changes:
            if change.by_id:
                # A record without a key attribute, which the planner knew by its `_id`.
                where: dict[str, Any] = {"_id": change.key}
                update: dict[str, Any] = {"$set": change.after}
            else:
                # By the key attribute, so a record written by other means is updated, not
                # doubled.
                where = {self._key: change.key}
                update = {"$set": change.after, "$setOnInsert": {"_id": change.key}}
            if change.action == "delete":
                operations.append(DeleteOne(where))
            else:
                operations.append(UpdateOne(where, update, upsert=True))
        await with_retries(
            self._retry,
            "write",
            lambda: self._collection.bulk_write(operations, ordered=False),
        )
