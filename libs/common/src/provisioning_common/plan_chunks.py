"""How a stored plan's changes lie in MongoDB: chunks of one action, numbered by position, so
that any page of a plan, per action or in plan order, is one or two point reads by `_id`.

The runner writes them (`sequence_runner.adapters.mongo_plans`); the runner's apply and
job-api's pages read them through `read_changes`. One place for the layout, so the writer and
both readers cannot drift apart.

A chunk holds its changes as one compressed BSON value (`encode_changes`), not as a thousand
subdocuments: the server then stores and returns one opaque value instead of parsing every
change (SecantusDB, in Python, spends most of a chunk's write and read doing that: measured
2026-12-06, 100 chunks of 1,000 changes written in 0.28 s instead of 0.91 s and read back in
0.22 s instead of 0.71 s), and a plan takes a tenth of the space. The values are the same BSON
either way, so a change reads back with the types it had. Chunks written before hold the
changes as a plain array (`changes`), and are still read."""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pymongo.asynchronous.collection import AsyncCollection

PLANS = "plans"
PLAN_CHUNKS = "plan_chunks"
# The first layout, one document per change: read while plans stored before chunks remain.
LEGACY_PLAN_CHANGES = "plan_changes"
# Changes per chunk. A page (at most 100 changes) then spans at most two chunks.
CHUNK_SIZE = 1000
# A chunk larger than this, encoded, is stored in parts (MongoDB refuses a document over
# 16 MiB; records with photos or long member lists make a thousand changes that large).
PART_BYTES = 8 * 1024 * 1024
# How a chunk's changes are encoded in its `encoded` field, named in its `encoding` field.
ENCODING = "bson+zlib"
# zlib's fastest level: the changes of identity records shrink about 11 times at it, and the
# levels above cost several times the CPU for a few per cent more.
ZLIB_LEVEL = 1


def encode_changes(encoded_changes: bytes) -> dict[str, Any]:
    """The fields of a chunk document holding changes already encoded as the BSON document
    `{"changes": [...]}` (the writer has that encoding at hand: it sizes the parts with it)."""
    compressed = zlib.compress(encoded_changes, ZLIB_LEVEL)
    return {"encoding": ENCODING, "encoded": bson.Binary(compressed)}


def stored_changes(document: dict[str, Any], codec_options: CodecOptions[Any]) -> list[Any]:
    """The changes a chunk document holds, decoded with the collection's codec options (so a
    date reads back time-zone aware, as every other value the services read)."""
    encoding = document.get("encoding")
    if encoding is None:
        return list(document["changes"])
    if encoding != ENCODING:
        raise ValueError(f"plan chunk {document['_id']}: unknown encoding {encoding!r}")
    decoded = bson.decode(zlib.decompress(document["encoded"]), codec_options=codec_options)
    return list(decoded["changes"])


@dataclass(frozen=True)
class ActionRun:
    """The changes of one action in a stored plan: seq `first_seq` to `first_seq + count - 1`.
    A plan's changes come grouped by action (creates, updates, then deletes or disables), so a
    plan has one run per action it holds, in seq order."""

    action: str
    first_seq: int
    count: int

    def to_document(self) -> dict[str, Any]:
        return {"action": self.action, "first_seq": self.first_seq, "count": self.count}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "ActionRun":
        return cls(document["action"], document["first_seq"], document["count"])


def chunk_id(plan_id: str, action: str, number: int, part: int = 0) -> str:
    """The `_id` of chunk `number` of an action (its changes at positions number * CHUNK_SIZE
    onwards within the action), or of one of its later parts."""
    suffix = "" if part == 0 else f":{part}"
    return f"{plan_id}:{action}:{number}{suffix}"


@dataclass(frozen=True)
class ChunkSlice:
    """Changes `start` to `stop - 1` of chunk `number` of `action` (offsets within the chunk)."""

    action: str
    number: int
    start: int
    stop: int


def chunk_slices(
    runs: Sequence[ActionRun], first: int, stop: int, chunk_size: int = CHUNK_SIZE
) -> list[ChunkSlice]:
    """Positions `first` to `stop - 1` of `runs` laid end to end, as slices of chunks. Over a
    whole plan's runs a position is the change's seq; over one run, its place in that action."""
    slices: list[ChunkSlice] = []
    offset = 0
    for run in runs:
        low, high = max(first - offset, 0), min(stop - offset, run.count)
        position = low
        while position < high:
            number = position // chunk_size
            chunk_end = min((number + 1) * chunk_size, high)
            slices.append(
                ChunkSlice(
                    run.action,
                    number,
                    position - number * chunk_size,
                    chunk_end - number * chunk_size,
                )
            )
            position = chunk_end
        offset += run.count
    return slices


async def _chunk_changes(
    chunks: AsyncCollection[dict[str, Any]], plan_id: str, wanted: Sequence[ChunkSlice]
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The changes of each chunk the slices name, parts joined: one read by `_id`, and one
    more only for chunks stored in parts."""
    keys = sorted({(s.action, s.number) for s in wanted})
    found: dict[str, dict[str, Any]] = {}
    ids = [chunk_id(plan_id, action, number) for action, number in keys]
    async for document in chunks.find({"_id": {"$in": ids}}):
        found[document["_id"]] = document
    more = [
        chunk_id(plan_id, action, number, part)
        for action, number in keys
        for part in range(1, found.get(chunk_id(plan_id, action, number), {}).get("parts", 1))
    ]
    if more:
        async for document in chunks.find({"_id": {"$in": more}}):
            found[document["_id"]] = document
    joined: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for action, number in keys:
        head = found.get(chunk_id(plan_id, action, number))
        if head is None:
            continue
        changes = stored_changes(head, chunks.codec_options)
        for part in range(1, head.get("parts", 1)):
            tail = found.get(chunk_id(plan_id, action, number, part))
            if tail is not None:
                changes += stored_changes(tail, chunks.codec_options)
        joined[(action, number)] = changes
    return joined


async def read_changes(
    chunks: AsyncCollection[dict[str, Any]],
    plan_id: str,
    runs: Sequence[ActionRun],
    first: int,
    stop: int,
    chunk_size: int = CHUNK_SIZE,
) -> list[dict[str, Any]]:
    """Changes at positions `first` to `stop - 1` of `runs` (see `chunk_slices`), each as
    `{seq, action, key, before, after}` (and `by_id: true`, `dn` where they are). A chunk
    missing from the store yields nothing for its positions: the caller compares what it got."""
    return await read_slices(chunks, plan_id, chunk_slices(runs, first, stop, chunk_size))


async def read_slices(
    chunks: AsyncCollection[dict[str, Any]], plan_id: str, wanted: Sequence[ChunkSlice]
) -> list[dict[str, Any]]:
    """The changes the slices name, in their order, each chunk read once."""
    if not wanted:
        return []
    stored = await _chunk_changes(chunks, plan_id, wanted)
    changes: list[dict[str, Any]] = []
    for piece in wanted:
        for change in stored.get((piece.action, piece.number), [])[piece.start : piece.stop]:
            changes.append({**change, "action": piece.action})
    return changes
