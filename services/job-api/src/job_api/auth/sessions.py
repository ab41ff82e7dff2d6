"""Console sessions in MongoDB (`console_sessions`): the sha256 of the cookie, its CSRF token."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provisioning_common.envelope import utcnow
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from job_api.auth.keys import ApiKeyRecord
from job_api.auth.permissions import Role
from job_api.auth.tokens import hash_secret, new_token

CONSOLE_SESSIONS = "console_sessions"


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str
    name: str
    role: Role
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: datetime


class SessionStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._sessions: AsyncCollection[dict[str, Any]] = db[CONSOLE_SESSIONS]

    async def ensure_indexes(self) -> None:
        # Expired sessions are refused by lookup() anyway; the TTL index only tidies them away.
        await self._sessions.create_index(
            [("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"
        )
        await self._sessions.create_index([("key_id", ASCENDING)], name="key")

    async def create(self, key: ApiKeyRecord, ttl: timedelta) -> NewSession:
        token, csrf_token = new_token(), new_token()
        now = utcnow()
        expires_at = now + ttl
        await self._sessions.insert_one(
            {
                "_id": hash_secret(token),
                "key_id": key.id,
                "name": key.name,
                "role": str(key.role),
                "csrf_token": csrf_token,
                "created_at": now,
                "expires_at": expires_at,
            }
        )
        return NewSession(token=token, csrf_token=csrf_token, expires_at=expires_at)

    async def lookup(self, token: str) -> ConsoleSession | None:
        doc = await self._sessions.find_one(
            {"_id": hash_secret(token), "expires_at": {"$gt": utcnow()}}
        )
        if doc is None:
            return None
        return ConsoleSession(
            key_id=doc["key_id"],
            name=doc["name"],
            role=Role(doc["role"]),
            csrf_token=doc["csrf_token"],
            expires_at=doc["expires_at"],
        )

    async def delete(self, token: str) -> None:
        await self._sessions.delete_one({"_id": hash_secret(token)})

    async def delete_for_key(self, key_id: str) -> int:
        result = await self._sessions.delete_many({"key_id": key_id})
        return result.deleted_count
