"""The planner: the exact changes that would make the target repository match the source."""

import math
import shutil
import tempfile
import weakref
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, compress, filterfalse, repeat
from operator import attrgetter, eq, itemgetter, le, ne, not_
from typing import Any

from provisioning_common.events import PlanCounts

from sequence_runner.domain.collector import collector_paused as _collector_paused
from sequence_runner.domain.collector import relax_collector as _relax_collector
from sequence_runner.domain.plan_checks import new_key_on_taken_id
from sequence_runner.domain.plan_digest import PlanDigester
from sequence_runner.domain.records import (
    ChangeAction,
    Key,
    Plan,
    PlanError,
    PlannedChange,
    SourceEntry,
    TargetRules,
)
from sequence_runner.domain.spill import PartitionedSpill, SpillFile


def _at(line: int | str) -> str:
    """Where a source record is, in an error: its line, or what stands for it (an entry's DN)."""
    return f"line {line}" if isinstance(line, int) else line


def _checked_attribute(name: str, line: int | str) -> str:
    # `_id` is the record's identity in the target; '$' and '.' would be read as operators or
    # paths by document stores, silently writing something else than what was planned.
    if name == "_id" or name.startswith("$") or "." in name or not name:
        raise PlanError(
            f"{_at(line)}: attribute name {name!r} is not allowed "
            "(reserved '_id', empty, starting with '$' or containing '.')"
        )
    return name


def map_record(record: SourceEntry, mapping: Mapping[str, str] | None) -> dict[str, Any]:
    """The target attributes of one source record (mapping: target attribute -> source field)."""
    if mapping is None:
        return {_checked_attribute(name, record.at): v for name, v in record.fields.items()}
    attributes: dict[str, Any] = {}
    for attribute, source_field in mapping.items():
        if source_field not in record.fields:
            raise PlanError(
                f"{_at(record.at)}: source field {source_field!r} (mapped to "
                f"{attribute!r}) is missing; the record has: {', '.join(record.fields) or 'none'}"
            )
        attributes[_checked_attribute(attribute, record.at)] = record.fields[source_field]
    return attributes


def key_of(attributes: Mapping[str, Any], key: str, line: int | str) -> Key:
    value = attributes.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PlanError(f"{_at(line)}: the key attribute {key!r} is missing or empty")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PlanError(
            f"{_at(line)}: the key attribute {key!r} must be a string or an integer, "
            f"not {type(value).__name__}"
        )
    return value


# A change before it is numbered: the position that orders it (its source record's ordinal for a
# create or an update, its target record's for a retirement), key, before, after, by_id.
_Draft = tuple[int, Key, dict[str, Any] | None, dict[str, Any] | None, bool]
# A keyed source record: ordinal, where it is (line or DN), key, target attributes (a dict, or
# with a mapping the tuple of their values in the mapping's order).
_Wanted = tuple[int, int | str, Key, Any]
# A keyed target record: ordinal, key, the record without its `_id` (with a mapping, when the
# record holds exactly the mapped attributes in the mapping's order, only the tuple of their
# values: see `_compact`), its `_id`.
_Existing = tuple[int, Key, dict[str, Any] | tuple[Any, ...], Any]


# What a document store hands back for true/false, arrays and embedded documents.
_UNMATCHABLE_KEYS = frozenset({bool, list, dict})


def _target_key(record: Mapping[str, Any], key: str) -> Key:
    """A target record's key attribute; without one (or with a null one), its `_id`. The target
    connector finds the record the same way when it writes."""
    value: Any = record.get(key)
    if value is None:
        value = record.get("_id")
    # True would be taken for the key 1, and a list or a document cannot be looked up at all.
    if type(value) in _UNMATCHABLE_KEYS:
        raise PlanError(
            f"the target record with _id {record.get('_id')!r} has {key}={value!r}, which "
            "cannot be matched to a source record's key (a string or an integer)"
        )
    found: Key = value
    return found


def _as_text(value: Key) -> str:
    return value if isinstance(value, str) else str(value)


def _kind(value: Key) -> str:
    return "text" if isinstance(value, str) else "a number"


def _same(stored: Any, wanted: Any) -> bool:
    """Whether the target already holds the value, as a document store compares them."""
    if type(stored) is not type(wanted):
        # In Python True == 1 and [1] == [True]; a document store keeps true and 1 apart.
        if isinstance(stored, bool) or isinstance(wanted, bool):
            return False
        if isinstance(stored, list | dict) or isinstance(wanted, list | dict):
            return False
        return bool(stored == wanted)
    if isinstance(wanted, list):
        return len(stored) == len(wanted) and all(map(_same, stored, wanted))
    if isinstance(wanted, dict):
        return stored.keys() == wanted.keys() and all(
            _same(stored[name], value) for name, value in wanted.items()
        )
    if stored == wanted:
        return True
    # NaN equals nothing, not even the NaN the target stored last time.
    return isinstance(wanted, float) and math.isnan(wanted) and math.isnan(stored)


def _changed(
    current: Mapping[str, Any], attributes: Mapping[str, Any], absent_is_empty: bool
) -> dict[str, Any]:
    """The old values of the attributes whose value changes."""
    changed: dict[str, Any] = {}
    for name, value in attributes.items():
        if name not in current:
            if absent_is_empty and value is None:
                continue
            changed[name] = None
            continue
        stored = current[name]
        # Text equal to text is the same (most values, and cheap); the rest is compared as the
        # document store would.
        if (type(value) is str and stored == value) or _same(stored, value):
            continue
        changed[name] = stored
    return changed


_FIELDS = attrgetter("fields")
_SOURCE_KEY = itemgetter(2)
_ATTRIBUTES = itemgetter(3)
_TARGET_KEY = itemgetter(1)
_RECORD = itemgetter(2)
_ID = itemgetter("_id")
_LINE = attrgetter("line")
_DN = attrgetter("dn")
# Target keys taken as they are, with no call per record; any other type is looked at record
# by record (a boolean, a list or a document is refused there).
_PLAIN_KEYS = frozenset({str, int})
# Values that Python's `==` compares exactly as a document store does: a `==` between dicts of
# only these settles a comparison (True == 1, [1] == [True] and 1 == 1.0 need `_same`).
_PLAIN_VALUES = frozenset({str, type(None)})
_ALL_TEXT = frozenset({str})
_ONLY_TUPLES = frozenset({tuple})


# A value no source record holds (what an attribute the target lacks is compared as).
_ABSENT: Any = object()


def _at_or(dn: str | None, line: int | str) -> int | str:
    return dn if dn is not None else line


def _changed_values(
    names: tuple[str, ...],
    wanted: tuple[Any, ...],
    stored: tuple[Any, ...],
    absent_is_empty: bool,
) -> dict[str, Any]:
    """`_changed` for wanted values that are all text or null, given as tuples in the order of
    `names` (the target's as got for the comparison, `_ABSENT` where it lacks one): for those
    `==` is the document store's comparison, and `_same` is not needed."""
    changed: dict[str, Any] = {}
    for name, value, current in zip(names, wanted, stored):  # noqa: B905 (one length: names)
        if current == value:
            continue
        if current is _ABSENT:
            if absent_is_empty and value is None:
                continue
            changed[name] = None
            continue
        changed[name] = current
    return changed


def _values_getter(fields: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The values of `fields` of a dict as a tuple (KeyError when one is missing)."""
    if len(fields) == 1:
        one = fields[0]
        return lambda record: (record[one],)
    if not fields:
        return lambda record: ()
    getter: Callable[[dict[str, Any]], tuple[Any, ...]] = itemgetter(*fields)
    return getter


@dataclass(frozen=True)
class PlanBound:
    """How much of a sequence the planner holds in memory at once.

    Up to `memory_records` records (source and target together) are planned in memory; beyond,
    both sides are set aside on disk in `partitions` hash partitions of their keys (in
    `directory`, the system's temporary folder by default), and each partition is planned on
    its own. A partition still larger than `memory_records` is split again."""

    memory_records: int = 200_000
    partitions: int = 64
    directory: str | None = None


# A plan's first error wins, as if the plan were computed record by record: a duplicate source
# key before anything about the target, then the target's duplicates, then a key of the wrong
# type, then a new key on a taken `_id`; among errors of one kind, the earliest record.
_SOURCE_DUPLICATE, _TARGET_DUPLICATE, _KEY_TWIN, _TAKEN_ID = range(4)
_Failure = tuple[int, int, str]

# Changes read back from disk are merged in chunks of this many per partition.
_OUTPUT_CHUNK = 1000
# Records keyed before they are kept in memory or handed to the spill, at a time (the runner
# hands 5,000 at a time).
_PIECE = 5000
# Partitions split again at most this often (a partition of one repeated key cannot shrink).
_MAX_SPLITS = 3


@dataclass
class _Drafts:
    creates: list[_Draft]
    updates: list[_Draft]
    retired: list[_Draft]
    unchanged: int = 0


class StreamedPlan:
    """A computed plan whose changes may be on disk: counted, digested, and read back in order
    as often as needed (to store it) without ever being held whole.

    `digest` is `plan_digest` of its changes, made while the planner had them: equal to
    `plan_digest(plan.changes())`, without reading the plan back. None when the planner was told
    not to make it (`digests=False`): a target that places its changes, a directory's DN,
    digests the changes it placed instead."""

    def __init__(
        self,
        counts: PlanCounts,
        streams: tuple[tuple[ChangeAction, Iterable[_Draft] | None, SpillFile | None, int], ...],
        digest: str | None,
    ) -> None:
        self.counts = counts
        self._streams = streams
        self.digest = digest

    def changes(self) -> Iterator[PlannedChange]:
        """Creates in source order, then updates in source order, then deletes (or disables)
        in target order, numbered `seq` 0, 1, …"""
        seq = 0
        for action, in_memory, spilled, partitions in self._streams:
            batches: Iterable[list[_Draft]]
            if in_memory is not None:
                batches = (in_memory,) if isinstance(in_memory, list) else (list(in_memory),)
            else:
                assert spilled is not None
                batches = _merged([spilled.chunks(part) for part in range(partitions)])
            for drafts in batches:
                numbered = range(seq, seq + len(drafts))
                yield from map(
                    PlannedChange,
                    numbered,
                    repeat(action),
                    map(_DRAFT_KEY, drafts),
                    map(_DRAFT_BEFORE, drafts),
                    map(_DRAFT_AFTER, drafts),
                    map(_DRAFT_BY_ID, drafts),
                )
                seq += len(drafts)


_DRAFT_ORDER = itemgetter(0)
_DRAFT_KEY = itemgetter(1)
_DRAFT_BEFORE = itemgetter(2)
_DRAFT_AFTER = itemgetter(3)
_DRAFT_BY_ID = itemgetter(4)


def _merged(partitions: list[Iterator[list[_Draft]]]) -> Iterator[list[_Draft]]:
    """The partitions' changes, each partition's chunks in order of position, merged into one
    order, a batch at a time: every change up to the smallest last position among the chunks
    in hand is sure to come before all the rest, so those are taken from each chunk (a bisect),
    sorted together (the interpreter's merge of sorted runs) and handed on. No Python step per
    change, where `heapq.merge` took several."""
    heads: list[tuple[list[_Draft], int, Iterator[list[_Draft]]]] = []
    for chunks in partitions:
        chunk = next(chunks, None)
        while chunk is not None and not chunk:
            chunk = next(chunks, None)
        if chunk is not None:
            heads.append((chunk, 0, chunks))
    while heads:
        bound = min(chunk[-1][0] for chunk, _, _ in heads)
        batch: list[_Draft] = []
        following: list[tuple[list[_Draft], int, Iterator[list[_Draft]]]] = []
        for chunk, start, chunks in heads:
            end = bisect_right(chunk, bound, start, key=_DRAFT_ORDER)
            batch += chunk[start:end] if start or end < len(chunk) else chunk
            if end < len(chunk):
                following.append((chunk, end, chunks))
                continue
            refill = next(chunks, None)
            while refill is not None and not refill:
                refill = next(chunks, None)
            if refill is not None:
                following.append((refill, 0, chunks))
        batch.sort(key=_DRAFT_ORDER)
        yield batch
        heads = following


class StreamedPlanner:
    """Plans a sequence from its source and its target fed in pieces, in bounded memory.

    Every record is mapped and keyed as it comes (errors name its line at once); the diff is
    made partition by partition once both sides are in. Close it (or use it in a `with`) to
    remove what it set aside on disk; the plan it finished reads from there."""

    def __init__(
        self,
        key: str,
        mapping: Mapping[str, str] | None,
        delete_missing: bool,
        source_name: str | None = None,
        rules: TargetRules | None = None,
        bound: PlanBound | None = None,
        check_free_ids: bool = False,
        digests: bool = True,
    ) -> None:
        self.key = key
        self.mapping = mapping
        self.delete_missing = delete_missing
        self.source_name = source_name
        self.rules = rules or TargetRules()
        self.bound = bound or PlanBound()
        self.check_free_ids = check_free_ids
        # False: the caller digests the changes itself, as it places them (a directory's DN is
        # part of what is approved); a digest made here would be thrown away.
        self.digests = digests
        self.records_read = 0
        self._sources: list[_Wanted] = []
        self._targets: list[_Existing] = []
        # `_id` -> key attribute of the target records stored under another `_id` than their key.
        self._taken: list[tuple[Any, Any]] = []
        # Whether every wanted value so far is text or null (`_PLAIN_VALUES`), and every target
        # key text: told as each piece comes, while its records are in the processor's cache,
        # so the diff need not look at every value again.
        self._plain_values = True
        self._text_keys = True
        self._source_count = 0
        self._target_count = 0
        self._spills: tuple[PartitionedSpill, PartitionedSpill, PartitionedSpill] | None = None
        self._directory: str | None = None
        self._files: list[SpillFile | PartitionedSpill] = []
        # Restores the collector's thresholds, once the plan is read in and stored (`close`).
        self._collector_relaxed: Callable[[], None] | None = None
        mapped = list(mapping.items()) if mapping is not None else None
        self._mapped = mapped
        # Names checked once: with a mapping they are the same for every record.
        self._mapping_names_ok = mapped is not None and all(
            a != "_id" and a and not a.startswith("$") and "." not in a for a, _ in mapped
        )
        self._names_ok: set[str] = set()
        # With a mapping (and no `stored_as`), a source record's attributes are kept as the
        # tuple of their values in the mapping's order, made by one call per record, and
        # compared with the target record's values got the same way: a dict per record is made
        # only for the changes. `_values_of` gets them from a source record's fields,
        # `_stored_values_of` from a target record.
        names = tuple(a for a, _ in mapped) if mapped is not None else ()
        self._attribute_names = names
        # What every create and update writes, with a mapping: the digest quotes their values
        # into one template (`PlanDigester.add_written`).
        self._written_names = names if mapped is not None and self.rules.stored_as is None else None
        self._as_values = self._mapping_names_ok and self.rules.stored_as is None and key in names
        self._key_index = names.index(key) if self._as_values else -1
        self._values_of = _values_getter(tuple(f for _, f in mapped) if mapped is not None else ())
        self._stored_values_of = _values_getter(names)
        # What a source key absent from the target is compared with: a record whose every
        # attribute holds a value no source has.
        self._no_target: _Existing = (
            (-1, "", (_ABSENT,) * len(names), None)
            if self._as_values
            else (-1, "", dict.fromkeys(names, _ABSENT), None)
        )
        # A target record holding exactly the mapped attributes, in the mapping's order, is kept
        # as the tuple of its values: the diff compares that tuple as it is, and a tuple is
        # several times cheaper than a dict to spill, read back and free (and, holding only
        # text, the collector stops walking it). The record is made again from the names only
        # for a change (`_record`), with the same attributes in the same order.
        self._stored = ("_id", *names)
        self._compact: Callable[[dict[str, Any]], dict[str, Any] | tuple[Any, ...]] | None = (
            None
            if not self._as_values
            else lambda record: tuple(record.values()) if tuple(record) == names else record
        )

    def __enter__(self) -> "StreamedPlanner":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._collector_relaxed is not None:
            self._collector_relaxed()
            self._collector_relaxed = None
        for spilled in self._files:
            spilled.close()
        self._files.clear()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    @property
    def spilled(self) -> bool:
        return self._spills is not None

    # -- reading -------------------------------------------------------------------------------

    def _relax_collector(self) -> None:
        """Collections made rarer from the first piece until the planner is closed: the reader
        makes the pieces between the planner's calls (`relax_collector`)."""
        if self._collector_relaxed is None:
            restore = _relax_collector()
            # A planner never closed gives them back when it is freed.
            weakref.finalize(self, restore)
            self._collector_relaxed = restore

    def _attributes(self, record: SourceEntry) -> dict[str, Any]:
        fields = record.fields
        if self._mapping_names_ok:
            assert self._mapped is not None
            try:
                return {attribute: fields[field] for attribute, field in self._mapped}
            except KeyError:
                pass  # map_record says which field, and where
        elif self._mapped is None:
            names_ok = self._names_ok
            for name in fields:
                if name not in names_ok:
                    _checked_attribute(name, record.at)
                    names_ok.add(name)
            return dict(fields)
        return map_record(record, self.mapping)

    def add_source(self, records: Iterable[SourceEntry]) -> None:
        """Map and key source records, in source order."""
        self._relax_collector()
        with _collector_paused():
            if isinstance(records, list):
                self._add_source_list(records)
            else:
                self._add_source(records)

    def _add_source_list(self, records: list[SourceEntry]) -> None:
        """Records already read (the runner hands them in pieces): each slice keyed at once,
        and record by record only where one is unusual, to say which and why."""
        for start in range(0, len(records), _PIECE):
            piece = records[start : start + _PIECE]
            keyed = self._keyed_sources(piece, self._source_count)
            if keyed is None:
                self._add_source(piece)
                continue
            self._source_count += len(keyed)
            self.records_read = self._source_count
            self._keep_sources(keyed)

    def _keyed_sources(self, piece: list[SourceEntry], ordinal: int) -> list[_Wanted] | None:
        """A slice of source records mapped and keyed with no Python loop of ours per record;
        None when a record lacks a field, has a name to check or a key that is not non-blank
        text (the loop of `_add_source` then finds it and names it)."""
        if not piece:
            return []
        fields: list[dict[str, Any]] = list(map(_FIELDS, piece))
        attributes: list[Any]
        if self._as_values:
            try:
                attributes = list(map(self._values_of, fields))
            except KeyError:
                return None
            keys = list(map(itemgetter(self._key_index), attributes))
        elif self._mapping_names_ok:
            try:
                values = list(map(self._values_of, fields))
            except KeyError:
                return None
            attributes = list(map(dict, map(zip, repeat(self._attribute_names), values)))
        elif self._mapped is None:
            if not self._names_ok.issuperset(chain.from_iterable(fields)):
                return None
            attributes = list(map(dict, fields))
        else:
            return None
        if not self._as_values:
            stored_as = self.rules.stored_as
            if stored_as is not None:
                attributes = list(map(stored_as, attributes))
            keys = list(map(dict.get, attributes, repeat(self.key)))
        if set(map(type, keys)) != {str} or not all(keys) or any(map(str.isspace, keys)):
            return None
        lines: list[int | str] = list(map(_LINE, piece))
        dns = list(map(_DN, piece))
        ats = lines if dns.count(None) == len(dns) else list(map(_at_or, dns, lines))
        return list(zip(range(ordinal, ordinal + len(piece)), ats, keys, attributes, strict=True))

    def _add_source(self, records: Iterable[SourceEntry]) -> None:
        stored_as = self.rules.stored_as
        key = self.key
        as_values = self._as_values
        ordinal = self._source_count
        piece: list[_Wanted] = []
        try:
            for record in records:
                attributes = self._attributes(record)
                if stored_as is not None:
                    attributes = stored_as(attributes)
                at = record.at
                record_key = attributes.get(key)
                # The common case checked inline: a key that is non-blank text.
                if type(record_key) is not str or not record_key or record_key.isspace():
                    record_key = key_of(attributes, key, at)
                piece.append(
                    (
                        ordinal,
                        at,
                        record_key,
                        tuple(attributes.values()) if as_values else attributes,
                    )
                )
                ordinal += 1
                if len(piece) >= _PIECE:
                    self._keep_sources(piece)
                    piece = []
        except PlanError as error:
            raise self._from_source(error) from None
        finally:
            self._keep_sources(piece)
            self._source_count = ordinal
        self.records_read = ordinal

    def add_target(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Key target records, in target order."""
        self._relax_collector()
        with _collector_paused():
            if isinstance(records, list):
                for start in range(0, len(records), _PIECE):
                    piece = records[start : start + _PIECE]
                    if not self._add_targets_at_once(piece):
                        self._add_target(piece)
            else:
                self._add_target(records)

    def _add_targets_at_once(self, piece: list[Mapping[str, Any]]) -> bool:
        """A slice of target records keyed with no Python loop of ours per record, when each
        is a dict with a text or integer key attribute; False (nothing kept) otherwise, for the
        loop of `_add_target`, which knows records by `_id` and names a key it refuses."""
        if not piece or set(map(type, piece)) != {dict}:
            return False
        records: list[dict[str, Any]] = piece  # type: ignore[assignment]
        keys: list[Any] = list(map(dict.get, records, repeat(self.key)))
        if not _PLAIN_KEYS.issuperset(map(type, keys)):
            return False
        kept: list[Any]
        if self._compact is not None and all(map(eq, map(tuple, records), repeat(self._stored))):
            # Each an `_id` and then just the mapped attributes, in order (a document store's
            # records as the planner wrote them): their values taken straight, no copy made.
            ids = list(map(_ID, records))
            kept = list(map(self._stored_values_of, records))
        else:
            kept = copies = list(map(dict, records))
            ids = list(map(dict.pop, copies, repeat("_id"), repeat(None)))
            if self._compact is not None:
                kept = list(map(self._compact, copies))
        ordinal = self._target_count
        self._target_count += len(piece)
        taken: list[tuple[Any, Any]] = []
        if self.check_free_ids:
            # Records stored under another `_id` than their key (few): the `!=` as in the loop.
            taken = [
                (record_id, record_key)
                for record_id, record_key in compress(
                    zip(ids, keys, strict=True), map(ne, ids, keys)
                )
                if record_id is not None
            ]
        self._keep_targets(
            list(zip(range(ordinal, self._target_count), keys, kept, ids, strict=True)), taken
        )
        return True

    def _add_target(self, records: Iterable[Mapping[str, Any]]) -> None:
        key = self.key
        check_free_ids = self.check_free_ids
        compact = self._compact
        ordinal = self._target_count
        piece: list[_Existing] = []
        taken: list[tuple[Any, Any]] = []
        try:
            for record in records:
                record_key = _target_key(record, key)
                attributes = dict(record)
                record_id = attributes.pop("_id", None)
                piece.append(
                    (
                        ordinal,
                        record_key,
                        attributes if compact is None else compact(attributes),
                        record_id,
                    )
                )
                ordinal += 1
                if check_free_ids:
                    stored_key = attributes.get(key)
                    # A record without a key attribute is known by its `_id`: the planner
                    # updates it.
                    if stored_key is not None and record_id is not None and record_id != stored_key:
                        taken.append((record_id, stored_key))
                if len(piece) >= _PIECE:
                    self._keep_targets(piece, taken)
                    piece, taken = [], []
        finally:
            self._keep_targets(piece, taken)
            self._target_count = ordinal

    def _keep_sources(self, piece: list[_Wanted]) -> None:
        if self._plain_values:
            attributes = map(_ATTRIBUTES, piece)
            values = chain.from_iterable(
                attributes if self._as_values else map(dict.values, attributes)
            )
            self._plain_values = _PLAIN_VALUES.issuperset(map(type, values))
        if self._spills is not None:
            self._spills[0].add(piece, 2)
        else:
            self._sources.extend(piece)
            self._spill_if_full()

    def _keep_targets(self, piece: list[_Existing], taken: list[tuple[Any, Any]]) -> None:
        if self._text_keys:
            self._text_keys = _ALL_TEXT.issuperset(map(type, map(_TARGET_KEY, piece)))
        if self._spills is not None:
            self._spills[1].add(piece, 1)
            self._spills[2].add(taken, 0)
        else:
            self._targets.extend(piece)
            self._taken.extend(taken)
            self._spill_if_full()

    def _from_source(self, error: PlanError) -> PlanError:
        return error if self.source_name is None else PlanError(f"{self.source_name}: {error}")

    def _spill_if_full(self) -> None:
        if len(self._sources) + len(self._targets) + len(self._taken) <= self.bound.memory_records:
            return
        self._directory = tempfile.mkdtemp(prefix="plan-", dir=self.bound.directory)
        spills = self._new_spills(0)
        spills[0].add(self._sources, 2)
        spills[1].add(self._targets, 1)
        spills[2].add(self._taken, 0)
        self._sources, self._targets, self._taken = [], [], []
        self._spills = spills

    def _new_spills(
        self, salt: int, partitions: int | None = None
    ) -> tuple[PartitionedSpill, PartitionedSpill, PartitionedSpill]:
        assert self._directory is not None
        bound = self.bound
        # Half the bound for what waits to be written, so reading and diffing stay within it.
        spills = tuple(
            PartitionedSpill(
                self._directory, partitions or bound.partitions, bound.memory_records // 2, salt
            )
            for _ in range(3)
        )
        self._files.extend(spills)
        return spills[0], spills[1], spills[2]

    # -- planning ------------------------------------------------------------------------------

    def finish(self) -> StreamedPlan:
        """The plan, once both sides are in; raises the plan's first error (`PlanError`)."""
        with _collector_paused():
            return self._finish()

    def _finish(self) -> StreamedPlan:
        retire_action: ChangeAction = "disable" if self.rules.deprovision == "disable" else "delete"
        if self._spills is None:
            drafts = _Drafts([], [], [])
            failure = self._diff(self._sources, self._targets, self._taken, drafts)
            if failure is not None:
                raise PlanError(failure[2])
            counts = self._counts(drafts, self._target_count)
            digester = PlanDigester()
            if self.digests:
                _digest(digester, retire_action, drafts, self._written_names)
            return StreamedPlan(
                counts,
                (
                    ("create", drafts.creates, None, 0),
                    ("update", drafts.updates, None, 0),
                    (retire_action, drafts.retired, None, 0),
                ),
                digester.digest() if self.digests else None,
            )
        assert self._directory is not None
        outputs = (
            SpillFile(self._directory),
            SpillFile(self._directory),
            SpillFile(self._directory),
        )
        self._files.extend(outputs)
        sizes = [0, 0, 0]
        unchanged = 0
        digester = PlanDigester()
        first: _Failure | None = None
        part = 0
        # The merge holds one chunk per partition: together they stay within the bound however
        # many partitions the plan needed.
        chunk = max(16, min(_OUTPUT_CHUNK, self.bound.memory_records // (2 * self._leaf_count())))
        for leaf in self._leaves(self._spills, 1):
            drafts = _Drafts([], [], [])
            failure = self._diff(leaf[0], leaf[1], leaf[2], drafts)
            # This partition's records freed now, before the next is read: its records are
            # then made in the memory these just left, which the processor still holds.
            leaf.clear()
            if failure is not None:
                first = failure if first is None else min(first, failure)
                continue
            if first is not None:
                continue  # the plan fails: its changes are not needed
            unchanged += drafts.unchanged
            # Digested now, while the changes are in hand: the plan is not read back for it.
            if self.digests:
                _digest(digester, retire_action, drafts, self._written_names)
            groups = (drafts.creates, drafts.updates, drafts.retired)
            for action, (output, group) in enumerate(zip(outputs, groups, strict=True)):
                for start in range(0, len(group), chunk):
                    output.append(part, group[start : start + chunk])
                sizes[action] += len(group)
            part += 1
            del drafts, groups  # written: freed before the next partition is read
        if first is not None:
            raise PlanError(first[2])
        counts = PlanCounts(
            create=sizes[0],
            update=sizes[1],
            **self._retired_counts(sizes[2]),
            unchanged=unchanged,
            target_size=self._target_count,
        )
        return StreamedPlan(
            counts,
            (
                ("create", None, outputs[0], part),
                ("update", None, outputs[1], part),
                (retire_action, None, outputs[2], part),
            ),
            digester.digest() if self.digests else None,
        )

    def _split_into(self, size: int) -> int:
        """Partitions for a partition of `size` items that is over the bound: just enough, so
        the partitions (and the merge's chunks, one per partition) stay few."""
        return min(self.bound.partitions, 2 * (size // max(1, self.bound.memory_records) + 1))

    def _leaf_count(self) -> int:
        assert self._spills is not None
        sources, targets, taken = self._spills
        count = 0
        for part in range(sources.partitions):
            size = sources.counts[part] + targets.counts[part] + taken.counts[part]
            if size > self.bound.memory_records:
                count += self._split_into(size)
            elif size:
                count += 1
        return max(1, count)

    def _leaves(
        self, spills: tuple[PartitionedSpill, PartitionedSpill, PartitionedSpill], depth: int
    ) -> Iterator[list[Any]]:
        """Each partition's three streams (sources, targets, taken `_id`s) in a list, which the
        caller empties once it is done with them; a partition larger than the bound split
        again."""
        sources, targets, taken = spills
        for part in range(sources.partitions):
            size = sources.counts[part] + targets.counts[part] + taken.counts[part]
            if size == 0:
                continue
            if size <= self.bound.memory_records or depth > _MAX_SPLITS:
                yield [sources.load(part), targets.load(part), taken.load(part)]
                continue
            smaller = self._new_spills(depth, self._split_into(size))
            for key_at, (spill, into) in enumerate(zip(spills, smaller, strict=True)):
                for chunk in spill.chunks(part):
                    # Sources are filed by their key (element 2), targets by theirs (1), taken
                    # `_id`s by the `_id` (0).
                    into.add(chunk, (2, 1, 0)[key_at])
            yield from self._leaves(smaller, depth + 1)

    def _counts(self, drafts: _Drafts, target_size: int) -> PlanCounts:
        return PlanCounts(
            create=len(drafts.creates),
            update=len(drafts.updates),
            **self._retired_counts(len(drafts.retired)),
            unchanged=drafts.unchanged,
            target_size=target_size,
        )

    def _retired_counts(self, retired: int) -> dict[str, int]:
        # Disables are their own count; the guard holds the delete threshold against deletions
        # and disables together (as Entra does).
        if self.rules.deprovision == "disable":
            return {"delete": 0, "disable": retired}
        return {"delete": retired, "disable": 0}

    def _diff(
        self,
        sources: list[_Wanted],
        targets: list[_Existing],
        taken: Iterable[tuple[Any, Any]],
        drafts: _Drafts,
    ) -> _Failure | None:
        """One partition's changes into `drafts`, in order; or its first error."""
        wanted, failure = self._wanted(sources)
        if failure is not None:
            return failure
        existing, failure = self._index_target(targets)
        if failure is not None:
            return failure
        failure = self._compare(sources, wanted, existing, drafts)
        if failure is not None:
            return failure
        if self.delete_missing:
            self._retire_missing(wanted, existing, drafts)
        if self.check_free_ids:
            return self._check_free_ids(taken, drafts.creates)
        return None

    def _wanted(self, sources: list[_Wanted]) -> tuple[Collection[Key], _Failure | None]:
        """The source's keys; a key seen twice is an error naming both lines."""
        keys = set(map(_SOURCE_KEY, sources))
        if len(keys) == len(sources):
            return keys, None
        # A key seen twice: the loop finds the first in source order, and names both lines.
        wanted: dict[Key, _Wanted] = {}
        for item in sources:
            record_key = item[2]
            seen = wanted.get(record_key)
            if seen is not None:
                first, at = seen[1], item[1]
                if isinstance(first, int) and isinstance(at, int):
                    where = f"lines {first} and {at}"
                else:
                    where = f"{first} and {at}"
                message = f"duplicate key {self.key}={record_key!r} at {where}"
                return wanted, (
                    _SOURCE_DUPLICATE,
                    item[0],
                    str(self._from_source(PlanError(message))),
                )
            wanted[record_key] = item
        return wanted, None

    def _index_target(
        self, targets: list[_Existing]
    ) -> tuple[dict[Key, _Existing], _Failure | None]:
        """The target's records by key, in target order; two with one key are an error."""
        existing = dict(zip(map(_TARGET_KEY, targets), targets, strict=True))
        if len(existing) == len(targets):
            return existing, None
        existing = {}
        for item in targets:
            record_key = item[1]
            seen = existing.get(record_key)
            if seen is not None:
                return existing, (
                    _TARGET_DUPLICATE,
                    item[0],
                    f"the target holds two records with {self.key}={record_key!r} "
                    f"(_id {seen[3]!r} and _id {item[3]!r}); a write by that key could reach "
                    "either",
                )
            existing[record_key] = item
        return existing, None

    def _compare(
        self,
        sources: list[_Wanted],
        wanted: Collection[Key],
        existing: Mapping[Key, _Existing],
        drafts: _Drafts,
    ) -> _Failure | None:
        """Creates and updates, in source order, and how many records need nothing."""
        key = self.key
        key_index = self._key_index
        absent_is_empty = self.rules.absent_is_empty
        # Which records surely need nothing, found without a Python loop of ours: every wanted
        # attribute is in the target record with an equal value (`<=` of their items). Equal is
        # the same as the document store's comparison when the wanted values are text or null;
        # with other values (a number could be stored as true) each record is compared below.
        attributes = list(map(_ATTRIBUTES, sources))
        no_target = self._no_target
        matched = list(map(existing.get, map(_SOURCE_KEY, sources), repeat(no_target)))
        current = list(map(_RECORD, matched))
        names = self._attribute_names
        as_values = self._as_values
        # Text or null wanted values as tuples: an update's old values are told from the two
        # tuples by `==` alone (`_changed_values`).
        stored: list[tuple[Any, ...]] | None = None
        looked_at: Iterable[int]
        if not self._plain_values:
            looked_at = range(len(sources))
        elif as_values:
            if _ONLY_TUPLES.issuperset(map(type, current)):
                # Every matched record was kept as its values (and the absent one is such a tuple).
                stored = current
            else:
                stored = list(map(self._stored_values, current))
            looked_at = compress(range(len(sources)), map(ne, attributes, stored))
        else:
            wanted_items = map(dict.items, attributes)
            looked_at = compress(
                range(len(sources)), map(not_, map(le, wanted_items, map(dict.items, current)))
            )
        # Whether a key absent from the target can have a twin there (the same text, another
        # type): not when every key is text.
        all_text = self._text_keys
        # Target keys by their text, to tell a key that differs from one of them only by its
        # type; built at the first create.
        as_text: dict[str, Key] | None = None
        creates, updates = drafts.creates, drafts.updates
        changed = 0
        for index in looked_at:
            ordinal, at, record_key, wanted_attributes = sources[index]
            if as_values:
                # The values were got by the mapping's names: as many as there are names.
                wanted_attributes = dict(zip(names, wanted_attributes))  # noqa: B905
            found = matched[index]
            if found is no_target:
                if all_text and type(record_key) is str:
                    creates.append((ordinal, record_key, None, wanted_attributes, False))
                    changed += 1
                    continue
                if as_text is None:
                    as_text = {_as_text(k): k for k in existing}
                twin = as_text.get(_as_text(record_key))
                if twin is not None:
                    where = f"{self.source_name}: " if self.source_name is not None else ""
                    return (
                        _KEY_TWIN,
                        ordinal,
                        f"{where}{_at(at)}: {key}={record_key!r} is {_kind(record_key)} but the "
                        f"target holds {key}={twin!r} as {_kind(twin)}; planned as it is, the "
                        f"record would be created a second time. Give {key} the same type in "
                        "the source and in the target",
                    )
                creates.append((ordinal, record_key, None, wanted_attributes, False))
                changed += 1
                continue
            kept = found[2]
            if stored is not None:
                old_values = _changed_values(
                    names, attributes[index], stored[index], absent_is_empty
                )
            else:
                old_values = _changed(self._record(kept), wanted_attributes, absent_is_empty)
            if old_values:
                # Kept as its values, the record holds the key attribute at the mapping's place.
                stored_key = kept[key_index] if isinstance(kept, tuple) else kept.get(key)
                updates.append(
                    (ordinal, record_key, old_values, wanted_attributes, stored_key is None)
                )
                changed += 1
        drafts.unchanged += len(wanted) - changed
        return None

    def _stored_values(self, kept: dict[str, Any] | tuple[Any, ...]) -> tuple[Any, ...]:
        """A target record's values of the mapped attributes (`_ABSENT` where it lacks one)."""
        if type(kept) is tuple:
            return kept
        record: dict[str, Any] = kept  # type: ignore[assignment]
        try:
            return self._stored_values_of(record)
        except KeyError:  # the record lacks an attribute
            return tuple(map(record.get, self._attribute_names, repeat(_ABSENT)))

    def _record(self, kept: dict[str, Any] | tuple[Any, ...]) -> dict[str, Any]:
        """A target record (without its `_id`) as it was read, from what the planner kept."""
        if type(kept) is tuple:
            # Kept as its values only when it held exactly the mapped attributes, in this order.
            return dict(zip(self._attribute_names, kept, strict=True))
        return kept  # type: ignore[return-value]

    def _retire_missing(
        self, wanted: Collection[Key], existing: Mapping[Key, _Existing], drafts: _Drafts
    ) -> None:
        """The records that left the source, to delete or disable; those disabled already need
        nothing (counted unchanged)."""
        rules = self.rules
        disabling = rules.deprovision == "disable" and rules.is_disabled is not None
        # The target's keys the source lacks, in target order, without a Python loop of ours.
        for record_key in filterfalse(wanted.__contains__, existing):
            ordinal, _, kept, _ = existing[record_key]
            record = self._record(kept)
            if disabling and rules.is_disabled is not None and rules.is_disabled(record):
                drafts.unchanged += 1
                continue
            drafts.retired.append((ordinal, record_key, record, None, record.get(self.key) is None))

    def _check_free_ids(
        self, taken: Iterable[tuple[Any, Any]], creates: list[_Draft]
    ) -> _Failure | None:
        """plan_checks' rule on one partition: a new key on another record's `_id`."""
        by_id = dict(taken)
        if not by_id:
            return None
        for ordinal, record_key, *_ in creates:
            if record_key in by_id:
                return (
                    _TAKEN_ID,
                    ordinal,
                    new_key_on_taken_id(self.key, record_key, by_id[record_key], self.source_name),
                )
        return None


def _digest(
    digester: PlanDigester,
    retire_action: ChangeAction,
    drafts: _Drafts,
    names: tuple[str, ...] | None,
) -> None:
    """`names`: with a mapping, the attributes every create and update writes."""
    actions: tuple[tuple[ChangeAction, list[_Draft]], ...] = (
        ("create", drafts.creates),
        ("update", drafts.updates),
        (retire_action, drafts.retired),
    )
    for action, group in actions:
        digester.add_written(action, map(_DRAFT_KEY, group), map(_DRAFT_AFTER, group), names)


def plan(
    source_records: Iterable[SourceEntry],
    target_records: Iterable[Mapping[str, Any]],
    key: str,
    mapping: Mapping[str, str] | None,
    delete_missing: bool,
    source_name: str | None = None,
    rules: TargetRules | None = None,
    bound: PlanBound | None = None,
) -> Plan:
    """Creates in source order, then updates in source order, then deletes (or disables) in
    target order, all held in memory (the runner stores a `StreamedPlan` without holding it).

    `source_name` (a file's path, or `inputs.<sequence>`) starts every error about a source
    record, so the reason names the source as well as the line. `rules` say how the target
    stores and retires records (a document store's, by default)."""
    with StreamedPlanner(key, mapping, delete_missing, source_name, rules, bound) as planner:
        planner.add_source(source_records)
        planner.add_target(target_records)
        streamed = planner.finish()
        return Plan(counts=streamed.counts, changes=tuple(streamed.changes()))
