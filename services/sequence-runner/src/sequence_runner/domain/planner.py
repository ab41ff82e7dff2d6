"""The planner: the exact changes that would make the target repository match the source."""

from collections.abc import Iterable, Mapping
from typing import Any

from provisioning_common.events import PlanCounts

from sequence_runner.domain.records import (
    ChangeAction,
    Key,
    Plan,
    PlanError,
    PlannedChange,
    SourceRecord,
)


def _checked_attribute(name: str, line: int) -> str:
    # `_id` is the record's identity in the target; '$' and '.' would be read as operators or
    # paths by document stores, silently writing something else than what was planned.
    if name == "_id" or name.startswith("$") or "." in name or not name:
        raise PlanError(
            f"line {line}: attribute name {name!r} is not allowed "
            "(reserved '_id', empty, starting with '$' or containing '.')"
        )
    return name


def map_record(record: SourceRecord, mapping: Mapping[str, str] | None) -> dict[str, Any]:
    """The target attributes of one source record (mapping: target attribute -> source field)."""
    if mapping is None:
        return {_checked_attribute(name, record.line): v for name, v in record.fields.items()}
    attributes: dict[str, Any] = {}
    for attribute, source_field in mapping.items():
        if source_field not in record.fields:
            raise PlanError(
                f"line {record.line}: source field {source_field!r} (mapped to "
                f"{attribute!r}) is missing; the record has: {', '.join(record.fields) or 'none'}"
            )
        attributes[_checked_attribute(attribute, record.line)] = record.fields[source_field]
    return attributes


def key_of(attributes: Mapping[str, Any], key: str, line: int) -> Key:
    value = attributes.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PlanError(f"line {line}: the key attribute {key!r} is missing or empty")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PlanError(
            f"line {line}: the key attribute {key!r} must be a string or an integer, "
            f"not {type(value).__name__}"
        )
    return value


# key, before, after
_Draft = tuple[Key, dict[str, Any] | None, dict[str, Any] | None]


def _target_key(record: Mapping[str, Any], key: str) -> Key:
    value: Key = record.get(key, record.get("_id"))
    return value


def plan(
    source_records: Iterable[SourceRecord],
    target_records: Iterable[Mapping[str, Any]],
    key: str,
    mapping: Mapping[str, str] | None,
    delete_missing: bool,
) -> Plan:
    """Creates in source order, then updates in source order, then deletes in target order."""
    wanted: dict[Key, tuple[int, dict[str, Any]]] = {}
    for record in source_records:
        attributes = map_record(record, mapping)
        record_key = key_of(attributes, key, record.line)
        seen = wanted.get(record_key)
        if seen is not None:
            raise PlanError(
                f"duplicate key {key}={record_key!r} at lines {seen[0]} and {record.line}"
            )
        wanted[record_key] = (record.line, attributes)

    existing: dict[Key, dict[str, Any]] = {}
    for target_record in target_records:
        existing[_target_key(target_record, key)] = {
            name: value for name, value in target_record.items() if name != "_id"
        }

    creates: list[_Draft] = []
    updates: list[_Draft] = []
    unchanged = 0
    for record_key, (_, attributes) in wanted.items():
        current = existing.get(record_key)
        if current is None:
            creates.append((record_key, None, attributes))
            continue
        old_values = {
            name: current.get(name)
            for name, value in attributes.items()
            if name not in current or current[name] != value
        }
        if old_values:
            updates.append((record_key, old_values, attributes))
        else:
            unchanged += 1

    deletes: list[_Draft] = []
    if delete_missing:
        deletes = [(k, record, None) for k, record in existing.items() if k not in wanted]

    changes: list[PlannedChange] = []
    groups: tuple[tuple[ChangeAction, list[_Draft]], ...] = (
        ("create", creates),
        ("update", updates),
        ("delete", deletes),
    )
    for action, group in groups:
        for record_key, before, after in group:
            changes.append(
                PlannedChange(
                    seq=len(changes),
                    action=action,
                    key=record_key,
                    before=before,
                    after=after,
                )
            )
    counts = PlanCounts(
        create=len(creates),
        update=len(updates),
        delete=len(deletes),
        unchanged=unchanged,
        target_size=len(existing),
    )
    return Plan(counts=counts, changes=tuple(changes))
