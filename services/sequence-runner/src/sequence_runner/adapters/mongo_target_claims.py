"""MongoDB `target_claims`: one document per target repository being planned or written, `_id`
= the target, so two runner processes cannot both claim one (the insert of the second fails)."""

from typing import Any

from provisioning_common.envelope import utcnow
from provisioning_common.mongo import is_duplicate_key
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

TARGET_CLAIMS = "target_claims"


class MongoTargetClaims:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._claims = database[TARGET_CLAIMS]

    async def claim(self, target: str, job_id: str) -> str | None:
        for _ in range(3):
            try:
                await self._claims.insert_one(
                    {"_id": target, "job_id": job_id, "claimed_at": utcnow()}
                )
                return None
            except PyMongoError as error:
                if not is_duplicate_key(error):
                    raise
            holder = await self._claims.find_one({"_id": target})
            if holder is not None:
                return None if holder["job_id"] == job_id else str(holder["job_id"])
            # Released between our insert and our read: try again.
        raise RuntimeError(f"the claim on target {target} keeps changing hands")

    async def release(self, target: str, job_id: str) -> None:
        await self._claims.delete_one({"_id": target, "job_id": job_id})
