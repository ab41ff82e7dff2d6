"""API keys in MongoDB (`api_keys`): only the sha256 of each key is kept, never the key."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning_common.envelope import utcnow
from provisioning_common.mongo import is_duplicate_key
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from job_api.auth.permissions import Role
from job_api.auth.tokens import hash_secret, new_api_key, same_secret

API_KEYS = "api_keys"
BOOTSTRAP_ADMIN_NAME = "admin"


class LastAdminKeyError(Exception):
    """Deleting the key would leave no admin key: nobody could manage keys any more."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is the last admin key: create another admin key first, "
            "or nobody could manage keys any more"
        )


class ApiKeyNameTakenError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"an API key named {name!r} already exists; choose another name")
        self.name = name


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "ApiKeyRecord":
        return cls(
            id=doc["_id"],
            name=doc["name"],
            role=Role(doc["role"]),
            created_at=doc["created_at"],
            created_by=doc.get("created_by"),
        )


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._keys: AsyncCollection[dict[str, Any]] = db[API_KEYS]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("name", ASCENDING)], unique=True, name="name_unique")
        await self._keys.create_index([("key_hash", ASCENDING)], unique=True, name="hash_unique")

    async def create(
        self, name: str, role: Role, created_by: str | None
    ) -> tuple[ApiKeyRecord, str]:
        """A new key; the returned secret is shown to the caller once and stored nowhere."""
        key = new_api_key()
        doc = {
            "_id": str(uuid.uuid4()),
            "name": name,
            "role": str(role),
            "key_hash": hash_secret(key),
            "created_at": utcnow(),
            "created_by": created_by,
        }
        try:
            await self._keys.insert_one(doc)
        except PyMongoError as error:
            if is_duplicate_key(error):
                raise ApiKeyNameTakenError(name) from error
            raise
        return ApiKeyRecord.from_document(doc), key

    async def upsert_bootstrap_admin(self, key: str) -> tuple[ApiKeyRecord, bool]:
        """The admin key of PROVISIONING_ADMIN_API_KEY; True when its value changed."""
        key_hash = hash_secret(key)
        before = await self._keys.find_one({"name": BOOTSTRAP_ADMIN_NAME})
        changed = before is None or not same_secret(before["key_hash"], key_hash)
        update = {
            "$set": {"key_hash": key_hash, "role": str(Role.ADMIN)},
            "$setOnInsert": {"_id": str(uuid.uuid4()), "created_at": utcnow(), "created_by": None},
        }
        try:
            doc = await self._keys.find_one_and_update(
                {"name": BOOTSTRAP_ADMIN_NAME}, update, upsert=True, return_document=True
            )
        except PyMongoError as error:
            # Two job-api processes starting together: the other one inserted it first.
            if not is_duplicate_key(error):
                raise
            doc = await self._keys.find_one_and_update(
                {"name": BOOTSTRAP_ADMIN_NAME}, update, return_document=True
            )
        assert doc is not None  # upserted, or inserted by the other process
        return ApiKeyRecord.from_document(doc), changed

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        key_hash = hash_secret(key)
        doc = await self._keys.find_one({"key_hash": key_hash})
        if doc is None or not same_secret(doc["key_hash"], key_hash):
            return None
        return ApiKeyRecord.from_document(doc)

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        doc = await self._keys.find_one({"_id": key_id})
        return None if doc is None else ApiKeyRecord.from_document(doc)

    async def list(self) -> list[ApiKeyRecord]:
        cursor = self._keys.find({}, {"key_hash": 0}).sort([("name", ASCENDING)])
        return [ApiKeyRecord.from_document(doc) async for doc in cursor]

    async def delete(self, key_id: str) -> ApiKeyRecord | None:
        """Delete a key, never the last admin key (LastAdminKeyError); None if there is none.

        Checked after the delete, not only before: two admins deleting each other's keys at
        once both see two admin keys beforehand. Whichever finds none left puts its key back,
        so at least one stays (both, when both look before either puts back).
        """
        doc = await self._keys.find_one_and_delete({"_id": key_id})
        if doc is None:
            return None
        record = ApiKeyRecord.from_document(doc)
        if (
            record.role is Role.ADMIN
            and await self._keys.count_documents({"role": str(Role.ADMIN)}, limit=1) == 0
        ):
            await self._keys.insert_one(doc)
            raise LastAdminKeyError(record.name)
        return record
