"""A round trip through PyMongo's AsyncMongoClient on the real wire server."""

from typing import Any

import pytest
from provisioning_common.mongo import is_duplicate_key
from provisioning_common.settings import MongoSettings
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

pytestmark = [pytest.mark.mongo]


async def test_round_trip_with_unique_index_and_duplicate_key(
    mongo_client: AsyncMongoClient[Any], unique_name: str
) -> None:
    identities = mongo_client[unique_name]["identities"]
    await identities.create_index("uid", unique=True, name="uid_unique")
    await identities.insert_one({"uid": "E0001", "mail": "ada@example.org"})

    with pytest.raises(DuplicateKeyError) as raised:
        await identities.insert_one({"uid": "E0001", "mail": "someone-else@example.org"})
    assert is_duplicate_key(raised.value)

    found = await identities.find_one({"uid": "E0001"}, {"_id": 0})
    assert found == {"uid": "E0001", "mail": "ada@example.org"}
    assert await identities.count_documents({}) == 1
    names = [index["name"] async for index in await identities.list_indexes()]
    assert "uid_unique" in names
    await mongo_client.drop_database(unique_name)


async def test_settings_build_an_async_client_that_connects_lazily(
    mongo_settings: MongoSettings,
) -> None:
    client = mongo_settings.model_copy(update={"uri": "mongodb://127.0.0.1:1"}).client()
    # Building a client connects nothing: a wrong address only shows on first use.
    assert isinstance(client, AsyncMongoClient)
    await client.close()
    real = mongo_settings.client()
    assert (await real.admin.command("ping"))["ok"] == 1
    await real.close()
