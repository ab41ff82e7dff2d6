"""Records as the runner sees them: what a source yields and the changes a plan holds."""

from dataclasses import dataclass, field
from typing import Any, Literal

from provisioning_common.events import PlanCounts

ChangeAction = Literal["create", "update", "delete"]
# A record's identity in the target repository: the value of its key attribute.
Key = str | int


@dataclass(frozen=True)
class SourceEntry:
    """One record of a source: its line (or position) for error messages, and its fields.

    Not named `SourceRecord`: job-api has one, the Kafka record a message came from."""

    line: int
    fields: dict[str, Any]


# The former name, until the planner and the connectors (changed on other branches) use
# SourceEntry; remove it then.
SourceRecord = SourceEntry


@dataclass(frozen=True)
class PlannedChange:
    """One change of a plan.

    create: `after` is the new record. update: `before` holds the old values of the changed
    attributes, `after` the whole record as it will be. delete: `before` is the record removed.
    `by_id`: the target record has no key attribute (or a null one); the planner knew it by its
    `_id`, and the write must find it that way.
    """

    seq: int
    action: ChangeAction
    key: Key
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    by_id: bool = False


@dataclass(frozen=True)
class Plan:
    counts: PlanCounts
    changes: tuple[PlannedChange, ...] = field(default=())

    @property
    def total_changes(self) -> int:
        return len(self.changes)


class PlanError(ValueError):
    """The source cannot be planned as it is; the message says where and why."""
