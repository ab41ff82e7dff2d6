"""Checks of a computed plan against the target it was computed from, for what the planner's
diff cannot see: a change that could not be written as planned."""

from collections.abc import Iterable, Mapping
from typing import Any

from sequence_runner.domain.records import Plan, PlanError


def check_creates_have_free_ids(
    plan: Plan,
    target_records: Iterable[Mapping[str, Any]],
    key: str,
    source_name: str | None = None,
) -> None:
    """A record is stored under `_id` = its key. A new key that is already the `_id` of a
    record known by another key attribute would collide with it halfway through the apply (the
    rest of the batch written, the sequence failed): refuse it now, before anything is written.
    """
    taken: dict[Any, Any] = {}
    for record in target_records:
        record_id, record_key = record.get("_id"), record.get(key)
        # A record without a key attribute is known by its `_id`: the planner updates it.
        if record_key is not None and record_id is not None and record_id != record_key:
            taken[record_id] = record_key
    if not taken:
        return
    for change in plan.changes:
        if change.action == "create" and change.key in taken:
            where = f"{source_name}: " if source_name is not None else ""
            raise PlanError(
                f"{where}{key}={change.key!r} is new, but the target record with "
                f"{key}={taken[change.key]!r} has _id {change.key!r}, which the new record "
                "would be stored under; give one of them another key"
            )
