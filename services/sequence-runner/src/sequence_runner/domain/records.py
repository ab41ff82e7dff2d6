"""Records as the runner sees them: what a source yields and the changes a plan holds."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# ChangeAction's `disable`: a record that left the source is kept but locked (deprovision:
# disable); its own action and count, held against the delete threshold with the deletions.
from provisioning_common.definitions import ChangeAction as ChangeAction
from provisioning_common.events import PlanCounts

# A record's identity in the target repository: the value of its key attribute.
Key = str | int


@dataclass(frozen=True)
class SourceEntry:
    """One record of a source: its line (or position) for error messages, and its fields.
    `dn`: a directory entry's DN, which errors name instead of a line.

    Not named `SourceRecord`: job-api once had one, the Kafka record a message came from."""

    line: int
    fields: dict[str, Any]
    dn: str | None = None

    @property
    def at(self) -> int | str:
        return self.dn if self.dn is not None else self.line


@dataclass(frozen=True)
class PlannedChange:
    """One change of a plan.

    create: `after` is the new record. update: `before` holds the old values of the changed
    attributes, `after` the whole record as it will be. delete and disable: `before` is the
    record removed or disabled.
    `by_id`: the target record has no key attribute (or a null one); the planner knew it by its
    `_id`, and the write must find it that way.
    `dn`: where a directory target writes it (for a rename, the entry's DN before), set by the
    target connector when the plan is stored, so the operator sees it and the apply uses it.
    """

    seq: int
    action: ChangeAction
    key: Key
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    by_id: bool = False
    dn: str | None = None


@dataclass(frozen=True)
class TargetRules:
    """How a target repository stores and retires records, as far as planning is concerned.

    `stored_as`: the wanted attributes as the target will hold them (a directory keeps text,
    multi-valued attributes as sets), so an unchanged record compares equal. `absent_is_empty`:
    an attribute the target record lacks equals an empty wanted value (a directory has no null).
    `deprovision`: what `delete_missing` does to a record that left the source; with
    "disable", `is_disabled` tells the records already disabled, which need nothing more."""

    stored_as: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    absent_is_empty: bool = False
    deprovision: Literal["delete", "disable"] = "delete"
    is_disabled: Callable[[Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class Plan:
    counts: PlanCounts
    changes: tuple[PlannedChange, ...] = field(default=())

    @property
    def total_changes(self) -> int:
        return len(self.changes)


class PlanError(ValueError):
    """The source cannot be planned as it is; the message says where and why."""
