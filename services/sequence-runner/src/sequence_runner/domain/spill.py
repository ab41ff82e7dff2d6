"""Records set aside on local disk in hash partitions, so a plan is computed piece by piece in a
memory bound that does not grow with the number of records."""

import marshal
import os
import pickle
import tempfile
from collections import deque
from collections.abc import Iterator
from itertools import repeat
from operator import itemgetter
from typing import Any, BinaryIO


def bucket_text(value: Any) -> str:
    """The text a key is partitioned by: the same for values a plan must see side by side.

    `"1001"` and `1001` land together, so the planner can tell a key that differs from a target
    key only by its type; `1.0` and `True` land with `1`, which a dict lookup takes them for."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# How a chunk is written: marshal for the plain values (str, int, float, None, lists, dicts…)
# nearly every record holds, several times faster than pickle both ways; pickle for a chunk with
# anything else (a date from a SQL source, a Decimal, a str subclass), which marshal refuses.
_MARSHAL, _PICKLE = b"m", b"p"
_MARSHAL_VERSION = 4


def _dumped(items: list[Any]) -> bytes:
    try:
        return _MARSHAL + marshal.dumps(items, _MARSHAL_VERSION)
    except ValueError:
        return _PICKLE + pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)


def _loaded(blob: bytes) -> list[Any]:
    items: list[Any]
    if blob[:1] == _MARSHAL:
        items = marshal.loads(memoryview(blob)[1:])
    else:
        items = pickle.loads(memoryview(blob)[1:])
    return items


class SpillFile:
    """One temporary file of chunks, each filed under a partition and read back in the order
    written. A chunk is a list of blobs (each a list of items, marshalled or pickled), so items
    can be serialised in small batches while they are still in the processor's cache and
    written together."""

    def __init__(self, directory: str) -> None:
        handle, self.path = tempfile.mkstemp(dir=directory, suffix=".spill")
        self._file: BinaryIO = os.fdopen(handle, "w+b")
        self._chunks: dict[int, list[tuple[int, int]]] = {}
        self._end = 0

    def append(self, partition: int, items: list[Any]) -> None:
        self.append_blobs(partition, [_dumped(items)])

    def append_blobs(self, partition: int, blobs: list[bytes]) -> None:
        chunk = marshal.dumps(blobs, _MARSHAL_VERSION)
        self._file.seek(self._end)
        self._file.write(chunk)
        self._chunks.setdefault(partition, []).append((self._end, len(chunk)))
        self._end += len(chunk)

    def chunks(self, partition: int) -> Iterator[list[Any]]:
        for offset, size in self._chunks.get(partition, ()):
            self._file.seek(offset)
            blobs: list[bytes] = marshal.loads(self._file.read(size))
            for blob in blobs:
                yield _loaded(blob)

    def items(self, partition: int) -> Iterator[Any]:
        for chunk in self.chunks(partition):
            yield from chunk

    def close(self) -> None:
        self._file.close()
        os.unlink(self.path)


class PartitionedSpill:
    """Items hashed by their bucket text into `partitions` partitions. Each batch added is
    serialised at once, partition by partition, and the blobs are held until `buffer_items`
    items wait, then written as one chunk per partition. `salt` changes the hash, so a
    partition too large for memory is split again into other partitions."""

    def __init__(self, directory: str, partitions: int, buffer_items: int, salt: int = 0) -> None:
        self.partitions = partitions
        self._counts = [0] * partitions
        self._file = SpillFile(directory)
        self._pending: list[list[bytes]] = [[] for _ in range(partitions)]
        self._buffered = 0
        self._buffer_items = max(1, buffer_items)
        self._salt = salt

    @property
    def counts(self) -> list[int]:
        """How many items each partition holds."""
        return self._counts

    def add(self, items: list[Any], key_at: int) -> None:
        """Items filed by the bucket text of their element `key_at`, in the order given."""
        if not items:
            return
        values = list(map(itemgetter(key_at), items))
        # Keys are text nearly always: then the text is the key itself, and no call per item.
        texts = values if set(map(type, values)) == {str} else list(map(bucket_text, values))
        hashes = map(hash, zip(repeat(self._salt), texts)) if self._salt else map(hash, texts)
        partitions = map(int.__mod__, hashes, repeat(self.partitions))
        batches: list[list[Any]] = [[] for _ in range(self.partitions)]
        # Each item appended to its partition's batch, the loop run by the interpreter's C
        # code rather than by Python bytecode: this is done once per record and side.
        deque(map(list.append, map(batches.__getitem__, partitions), items), maxlen=0)
        # Serialised now, while the items were just made: the same items read back from all
        # over memory later cost several times as much to serialise and to free.
        for partition, batch in enumerate(batches):
            if batch:
                self._pending[partition].append(_dumped(batch))
                self._counts[partition] += len(batch)
        self._buffered += len(items)
        if self._buffered >= self._buffer_items:
            self.flush()

    def flush(self) -> None:
        for partition, blobs in enumerate(self._pending):
            if blobs:
                self._file.append_blobs(partition, blobs)
                self._pending[partition] = []
        self._buffered = 0

    def items(self, partition: int) -> Iterator[Any]:
        """A partition's items, in the order they were added."""
        self.flush()
        return self._file.items(partition)

    def load(self, partition: int) -> list[Any]:
        """A partition's items as one list, in the order they were added."""
        loaded: list[Any] = []
        for chunk in self.chunks(partition):
            loaded += chunk
        return loaded

    def chunks(self, partition: int) -> Iterator[list[Any]]:
        self.flush()
        return self._file.chunks(partition)

    def close(self) -> None:
        self._file.close()
