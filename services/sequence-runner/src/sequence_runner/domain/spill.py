"""Records set aside on local disk in hash partitions, so a plan is computed piece by piece in a
memory bound that does not grow with the number of records."""

import os
import pickle
import tempfile
from collections.abc import Iterator
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


class SpillFile:
    """One temporary file of pickled chunks, each filed under a partition; read back chunk by
    chunk in the order written."""

    def __init__(self, directory: str) -> None:
        handle, self.path = tempfile.mkstemp(dir=directory, suffix=".spill")
        self._file: BinaryIO = os.fdopen(handle, "w+b")
        self._chunks: dict[int, list[tuple[int, int]]] = {}
        self._end = 0

    def append(self, partition: int, items: list[Any]) -> None:
        blob = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.seek(self._end)
        self._file.write(blob)
        self._chunks.setdefault(partition, []).append((self._end, len(blob)))
        self._end += len(blob)

    def chunks(self, partition: int) -> Iterator[list[Any]]:
        for offset, size in self._chunks.get(partition, ()):
            self._file.seek(offset)
            items: list[Any] = pickle.loads(self._file.read(size))
            yield items

    def items(self, partition: int) -> Iterator[Any]:
        for chunk in self.chunks(partition):
            yield from chunk

    def close(self) -> None:
        self._file.close()
        os.unlink(self.path)


class PartitionedSpill:
    """Items hashed by their bucket text into `partitions` partitions, buffered in memory and
    written as chunks once `buffer_items` are held. `salt` changes the hash, so a partition too
    large for memory is split again into other partitions."""

    def __init__(self, directory: str, partitions: int, buffer_items: int, salt: int = 0) -> None:
        self.partitions = partitions
        self.counts = [0] * partitions
        self._file = SpillFile(directory)
        self._buffers: list[list[Any]] = [[] for _ in range(partitions)]
        self._buffered = 0
        self._buffer_items = max(1, buffer_items)
        self._salt = salt

    def add(self, items: list[Any], key_at: int) -> None:
        """Items filed by the bucket text of their element `key_at`, in the order given."""
        buffers, counts, partitions, salt = self._buffers, self.counts, self.partitions, self._salt
        for item in items:
            value = item[key_at]
            text = value if type(value) is str else bucket_text(value)
            partition = (hash((salt, text)) if salt else hash(text)) % partitions
            buffers[partition].append(item)
            counts[partition] += 1
        self._buffered += len(items)
        if self._buffered >= self._buffer_items:
            self.flush()

    def flush(self) -> None:
        for partition, buffer in enumerate(self._buffers):
            if buffer:
                self._file.append(partition, buffer)
                self._buffers[partition] = []
        self._buffered = 0

    def items(self, partition: int) -> Iterator[Any]:
        """A partition's items, in the order they were added."""
        self.flush()
        return self._file.items(partition)

    def chunks(self, partition: int) -> Iterator[list[Any]]:
        self.flush()
        return self._file.chunks(partition)

    def close(self) -> None:
        self._file.close()
