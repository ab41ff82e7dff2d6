"""The inverse of one applied change, against the record the target holds now: pure.

A revert plans, change by change of the reverted sequence's stored plan, what puts the record
back as it was before that sequence: a creation becomes a deletion, an update restores the old
values of the attributes it changed, a deletion re-creates the record. A record someone changed
since the sequence ran is a conflict: left alone, or forced back when the operator says so.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sequence_runner.domain.planner import _changed
from sequence_runner.domain.records import ChangeAction, Key, PlannedChange, TargetRules

# Why a record is a conflict: its values differ from what the sequence wrote, a record it
# created is gone, a record it deleted (or disabled) is back.
ConflictReason = Literal["changed", "gone", "back"]
# Attributes a target reports that no write may set (a document's identity).
_NOT_WRITTEN = frozenset({"_id"})


@dataclass(frozen=True)
class InverseChange:
    """A change of the revert's plan, before it is numbered."""

    action: ChangeAction
    key: Key
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class Conflict:
    """A record changed since the reverted sequence ran, shown with its current value.

    `original` is the change the sequence applied; `forced` the inverse written anyway when the
    operator included conflicts (None: left alone, or nothing to write)."""

    original: PlannedChange
    reason: ConflictReason
    current: dict[str, Any] | None
    forced: InverseChange | None


@dataclass(frozen=True)
class Inverse:
    change: InverseChange | None
    conflict: Conflict | None = None


def _written(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name not in _NOT_WRITTEN}


def _holds(current: Mapping[str, Any], wanted: Mapping[str, Any], rules: TargetRules) -> bool:
    """Whether the target record has every wanted value, as the planner compares them."""
    return not _changed(current, wanted, rules.absent_is_empty)


def _restored(after: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """The record as it was before an update: what the update wrote, with the old values of the
    attributes it changed (None for an attribute the record did not have)."""
    return {**after, **before}


def _to(
    current: Mapping[str, Any] | None, wanted: dict[str, Any], key: Key, rules: TargetRules
) -> InverseChange | None:
    """What makes the record hold `wanted`: a creation when it is gone, an update of the
    attributes that differ, nothing when it holds them already."""
    if current is None:
        return InverseChange("create", key, None, _written(wanted))
    old = _changed(current, wanted, rules.absent_is_empty)
    if not old:
        return None
    return InverseChange("update", key, old, wanted)


def invert(
    change: PlannedChange,
    current: Mapping[str, Any] | None,
    rules: TargetRules,
    include_conflicts: bool,
) -> Inverse:
    """The inverse of `change` against `current` (the record under its key now, or None)."""
    key = change.key
    if change.action == "create":
        assert change.after is not None
        if current is None:
            # Already gone: there is nothing to write either way, but someone removed it.
            return Inverse(None, Conflict(change, "gone", None, None))
        delete = InverseChange("delete", key, dict(current), None)
        if _holds(current, change.after, rules):
            return Inverse(delete)
        return _conflict(change, "changed", current, delete, include_conflicts)
    if change.action == "update":
        assert change.after is not None
        assert change.before is not None
        wanted = _restored(change.after, change.before)
        if current is None:
            return _conflict(change, "gone", None, _to(None, wanted, key, rules), include_conflicts)
        if _holds(current, change.after, rules):
            return Inverse(_to(current, wanted, key, rules))
        # Forced: only the attributes the sequence changed go back; the others keep the values
        # they have now.
        now = {name: current.get(name) for name in change.after if name in current}
        forced = _to(current, {**change.after, **now, **change.before}, key, rules)
        return _conflict(change, "changed", current, forced, include_conflicts)
    # A deletion (or a disabling): the record as it was, from the plan's `before`.
    assert change.before is not None
    wanted = _written(change.before)
    if change.action == "delete":
        if current is None:
            return Inverse(_to(None, wanted, key, rules))
        forced = _to(current, wanted, key, rules)
        return _conflict(change, "back", current, forced, include_conflicts)
    # disable: the record is still there, locked; unlocking restores what it held.
    if current is None:
        return _conflict(change, "gone", None, _to(None, wanted, key, rules), include_conflicts)
    if rules.is_disabled is not None and rules.is_disabled(current):
        return Inverse(_to(current, wanted, key, rules))
    return _conflict(change, "back", current, _to(current, wanted, key, rules), include_conflicts)


def _conflict(
    change: PlannedChange,
    reason: ConflictReason,
    current: Mapping[str, Any] | None,
    inverse: InverseChange | None,
    include_conflicts: bool,
) -> Inverse:
    shown = None if current is None else dict(current)
    if include_conflicts:
        return Inverse(inverse, Conflict(change, reason, shown, inverse))
    return Inverse(None, Conflict(change, reason, shown, None))
