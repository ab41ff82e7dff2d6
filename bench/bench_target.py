"""Applying a plan to a mongo target against raw PyMongo writes of the same records."""

import os
import uuid
from typing import Any

from provisioning_common.settings import MongoSettings
from pymongo import UpdateOne
from sequence_runner.adapters.connectors.mongo_target import MongoTargetConnector, RetryPolicy
from sequence_runner.domain.records import PlannedChange

from bench.timing import best_of, report

BATCH = 500


def changes(count: int) -> list[PlannedChange]:
    return [
        PlannedChange(
            seq=i,
            action="create",
            key=f"E{i:07d}",
            before=None,
            after={"uid": f"E{i:07d}", "mail": f"user{i}@example.org", "sn": f"Name{i}"},
        )
        for i in range(count)
    ]


async def main(count: int = 5_000) -> list[str]:
    settings = MongoSettings(uri=os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017"))
    client = settings.client()
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    planned = changes(count)
    docs: list[dict[str, Any]] = [{"_id": c.key, **(c.after or {})} for c in planned]
    try:

        async def ours() -> None:
            collection = db["ours"]
            await collection.drop()
            target = MongoTargetConnector(
                collection, "uid", RetryPolicy(attempts=1, backoff_seconds=0)
            )
            await target.prepare()
            for start in range(0, count, BATCH):
                await target.apply(planned[start : start + BATCH])

        async def raw_upserts() -> None:
            collection = db["raw_upserts"]
            await collection.drop()
            await collection.create_index("uid", unique=True, sparse=True)
            for start in range(0, count, BATCH):
                await collection.bulk_write(
                    [
                        UpdateOne({"uid": d["uid"]}, {"$set": d}, upsert=True)
                        for d in docs[start : start + BATCH]
                    ],
                    ordered=False,
                )

        async def raw_inserts() -> None:
            collection = db["raw_inserts"]
            await collection.drop()
            await collection.create_index("uid", unique=True, sparse=True)
            for start in range(0, count, BATCH):
                await collection.insert_many(docs[start : start + BATCH], ordered=False)

        mine = await best_of(3, ours)
        return [
            report(
                f"apply {count:,} creations",
                mine,
                await best_of(3, raw_upserts),
                "raw bulk upserts",
            ),
            report(
                f"apply {count:,} creations", mine, await best_of(3, raw_inserts), "raw insert_many"
            ),
        ]
    finally:
        await client.drop_database(db.name)
        await client.close()
