"""The planner: the exact changes that would make the target repository match the source."""

import math
from collections.abc import Iterable, Mapping
from typing import Any

from provisioning_common.events import PlanCounts

from sequence_runner.domain.records import (
    ChangeAction,
    Key,
    Plan,
    PlanError,
    PlannedChange,
    SourceEntry,
    TargetRules,
)


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


def _wanted(
    source_records: Iterable[SourceEntry],
    key: str,
    mapping: Mapping[str, str] | None,
    rules: TargetRules,
) -> dict[Key, tuple[int | str, dict[str, Any]]]:
    """The source's records by key, each with its line and its target attributes."""
    wanted: dict[Key, tuple[int | str, dict[str, Any]]] = {}
    for record in source_records:
        attributes = map_record(record, mapping)
        if rules.stored_as is not None:
            attributes = rules.stored_as(attributes)
        record_key = key_of(attributes, key, record.at)
        seen = wanted.get(record_key)
        if seen is not None:
            if isinstance(seen[0], int) and isinstance(record.at, int):
                raise PlanError(
                    f"duplicate key {key}={record_key!r} at lines {seen[0]} and {record.line}"
                )
            raise PlanError(f"duplicate key {key}={record_key!r} at {seen[0]} and {record.at}")
        wanted[record_key] = (record.at, attributes)
    return wanted


# key, before, after
_Draft = tuple[Key, dict[str, Any] | None, dict[str, Any] | None]


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


def plan(
    source_records: Iterable[SourceEntry],
    target_records: Iterable[Mapping[str, Any]],
    key: str,
    mapping: Mapping[str, str] | None,
    delete_missing: bool,
    source_name: str | None = None,
    rules: TargetRules | None = None,
) -> Plan:
    """Creates in source order, then updates in source order, then deletes (or disables) in
    target order.

    `source_name` (a file's path, or `inputs.<sequence>`) starts every error about a source
    record, so the reason names the source as well as the line. `rules` say how the target
    stores and retires records (a document store's, by default)."""
    rules = rules or TargetRules()
    try:
        wanted = _wanted(source_records, key, mapping, rules)
    except PlanError as error:
        if source_name is None:
            raise
        raise PlanError(f"{source_name}: {error}") from None
    existing = _index_target(target_records, key)
    creates, updates, unchanged = _compare(wanted, existing, key, source_name, rules)
    retired: list[_Draft] = []
    already_retired = 0
    if delete_missing:
        retired, already_retired = _retire_missing(wanted, existing, rules)
    retire_action: ChangeAction = "disable" if rules.deprovision == "disable" else "delete"
    changes = _ordered_changes(
        (("create", creates), ("update", updates), (retire_action, retired)), existing, key
    )
    counts = PlanCounts(
        create=len(creates),
        update=len(updates),
        # Disables are counted as deletions: the delete threshold guards them (as Entra does).
        delete=len(retired),
        unchanged=unchanged + already_retired,
        target_size=len(existing),
    )
    return Plan(counts=counts, changes=changes)


def _index_target(
    target_records: Iterable[Mapping[str, Any]], key: str
) -> dict[Key, dict[str, Any]]:
    """The target's records by key, without their `_id`."""
    existing: dict[Key, dict[str, Any]] = {}
    ids: dict[Key, Any] = {}
    for target_record in target_records:
        target_key = _target_key(target_record, key)
        if target_key in existing:
            raise PlanError(
                f"the target holds two records with {key}={target_key!r} "
                f"(_id {ids[target_key]!r} and _id {target_record.get('_id')!r}); "
                "a write by that key could reach either"
            )
        ids[target_key] = target_record.get("_id")
        existing[target_key] = {
            name: value for name, value in target_record.items() if name != "_id"
        }
    return existing


def _compare(
    wanted: Mapping[Key, tuple[int | str, dict[str, Any]]],
    existing: Mapping[Key, dict[str, Any]],
    key: str,
    source_name: str | None,
    rules: TargetRules,
) -> tuple[list[_Draft], list[_Draft], int]:
    """Creates and updates, in source order, and how many records need nothing."""
    # Target keys by their text, to tell a key that differs from one of them only by its type;
    # built at the first create.
    as_text: dict[str, Key] | None = None
    creates: list[_Draft] = []
    updates: list[_Draft] = []
    unchanged = 0
    for record_key, (line, attributes) in wanted.items():
        current = existing.get(record_key)
        if current is None:
            if as_text is None:
                as_text = {_as_text(k): k for k in existing if isinstance(k, str | int)}
            twin = as_text.get(_as_text(record_key))
            if twin is not None:
                where = f"{source_name}: " if source_name is not None else ""
                raise PlanError(
                    f"{where}{_at(line)}: {key}={record_key!r} is {_kind(record_key)} but the "
                    f"target holds {key}={twin!r} as {_kind(twin)}; planned as it is, the record "
                    f"would be created a second time. Give {key} the same type in the source "
                    "and in the target"
                )
            creates.append((record_key, None, attributes))
            continue
        old_values = _changed(current, attributes, rules.absent_is_empty)
        if old_values:
            updates.append((record_key, old_values, attributes))
        else:
            unchanged += 1
    return creates, updates, unchanged


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


def _retire_missing(
    wanted: Mapping[Key, Any], existing: Mapping[Key, dict[str, Any]], rules: TargetRules
) -> tuple[list[_Draft], int]:
    """The records that left the source, to delete or disable; and how many of them are
    disabled already (they need nothing)."""
    retired: list[_Draft] = []
    already = 0
    for record_key, record in existing.items():
        if record_key in wanted:
            continue
        if rules.deprovision == "disable" and rules.is_disabled and rules.is_disabled(record):
            already += 1
            continue
        retired.append((record_key, record, None))
    return retired, already


def _ordered_changes(
    groups: Iterable[tuple[ChangeAction, list[_Draft]]],
    existing: Mapping[Key, dict[str, Any]],
    key: str,
) -> tuple[PlannedChange, ...]:
    changes: list[PlannedChange] = []
    for action, group in groups:
        for record_key, before, after in group:
            changes.append(
                PlannedChange(
                    seq=len(changes),
                    action=action,
                    key=record_key,
                    before=before,
                    after=after,
                    by_id=action != "create" and existing[record_key].get(key) is None,
                )
            )
    return tuple(changes)
