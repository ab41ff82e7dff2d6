"""Job definitions in MongoDB (collection job_definitions), versioned on every replacement."""

from datetime import UTC, datetime
from typing import Any

from provisioning_common.definitions import JobDefinition, JobDefinitionBody
from provisioning_common.mongo import is_duplicate_key
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

DEFINITIONS_COLLECTION = "job_definitions"
_FIELDS = frozenset(JobDefinition.model_fields)


class DefinitionError(Exception):
    """A definition operation that the stored definitions do not allow."""


class DuplicateDefinitionError(DefinitionError):
    def __init__(self, definition_id: str) -> None:
        super().__init__(f"a job definition with id {definition_id!r} already exists")
        self.definition_id = definition_id


class DefinitionNotFoundError(DefinitionError):
    def __init__(self, definition_id: str) -> None:
        super().__init__(f"no job definition with id {definition_id!r}")
        self.definition_id = definition_id


class DefinitionIdMismatchError(DefinitionError):
    def __init__(self, path_id: str, body_id: str) -> None:
        super().__init__(f"id: the body names {body_id!r} but the definition is {path_id!r}")
        self.path_id = path_id
        self.body_id = body_id


class DefinitionVersionConflictError(DefinitionError):
    def __init__(self, definition_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"job definition {definition_id!r} is at version {actual}, not {expected}: "
            "someone replaced it meanwhile; read it again"
        )
        self.definition_id = definition_id
        self.expected = expected
        self.actual = actual


class DefinitionRepository:
    """One document per definition: `_id` is the definition id, `version` starts at 1."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db[DEFINITIONS_COLLECTION]

    async def ensure_indexes(self) -> None:
        # The listing sorts by _id, which MongoDB always indexes; this index serves lookups of
        # definitions by name (the console's search) without a collection scan.
        await self._collection.create_index([("name", ASCENDING), ("_id", ASCENDING)])

    async def create(self, body: JobDefinitionBody, *, at: datetime | None = None) -> JobDefinition:
        """Store a new definition at version 1; DuplicateDefinitionError when the id is taken."""
        definition = JobDefinition(**body.model_dump(), version=1)
        now = at or datetime.now(UTC)
        document = {
            "_id": definition.id,
            **definition.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._collection.insert_one(document)
        except PyMongoError as error:
            if is_duplicate_key(error):
                raise DuplicateDefinitionError(definition.id) from error
            raise
        return definition

    async def replace(
        self,
        definition_id: str,
        body: JobDefinitionBody,
        *,
        expected_version: int | None = None,
        at: datetime | None = None,
    ) -> JobDefinition:
        """The new content at version + 1; jobs already created keep their snapshot."""
        if body.id != definition_id:
            raise DefinitionIdMismatchError(definition_id, body.id)
        query: dict[str, Any] = {"_id": definition_id}
        if expected_version is not None:
            query["version"] = expected_version
        # model_dump writes every field, defaults included, so nothing of the old body survives.
        update = {
            "$set": {**body.model_dump(mode="json"), "updated_at": at or datetime.now(UTC)},
            "$inc": {"version": 1},
        }
        stored = await self._collection.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
        if stored is None:
            current = await self.get(definition_id)
            if current is None:
                raise DefinitionNotFoundError(definition_id)
            assert expected_version is not None  # only a version filter misses an existing id
            raise DefinitionVersionConflictError(definition_id, expected_version, current.version)
        return _definition(stored)

    async def get(self, definition_id: str) -> JobDefinition | None:
        stored = await self._collection.find_one({"_id": definition_id})
        return None if stored is None else _definition(stored)

    async def list(self, page: int = 1, page_size: int = 10) -> tuple[list[JobDefinition], int]:
        """One page of definitions by id, and how many there are in all."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        total = await self._collection.count_documents({})
        cursor = (
            self._collection.find({})
            .sort("_id", ASCENDING)
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        items = [_definition(stored) async for stored in cursor]
        return items, total

    async def delete(self, definition_id: str) -> bool:
        """True when the definition existed. Callers check `JobInstanceStore.is_in_use` first."""
        result = await self._collection.delete_one({"_id": definition_id})
        return result.deleted_count == 1


def _definition(stored: dict[str, Any]) -> JobDefinition:
    return JobDefinition.model_validate({k: v for k, v in stored.items() if k in _FIELDS})
