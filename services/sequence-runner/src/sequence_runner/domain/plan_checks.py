"""Checks of a computed plan against the target it was computed from, for what the planner's
diff cannot see: a change that could not be written as planned."""

from collections.abc import Iterable, Mapping
from typing import Any

from sequence_runner.domain.records import Key, Plan, PlanError


def new_key_on_taken_id(key: str, new_key: Key, holder_key: Any, source_name: str | None) -> str:
    """The reason a create is refused: its key is another target record's `_id`."""
    where = f"{source_name}: " if source_name is not None else ""
    return (
        f"{where}{key}={new_key!r} is new, but the target record with "
        f"{key}={holder_key!r} has _id {new_key!r}, which the new record "
        "would be stored under; give one of them another key"
    )


def check_creates_have_free_ids(
    plan: Plan,
    target_records: Iterable[Mapping[str, Any]],
    key: str,
    source_name: str | None = None,
) -> None:
    """A record is stored under `_id` = its key. A new key that is already the `_id` of a
    record known by another key attribute would collide with it halfway through the apply (the
    rest of the batch written, the sequence failed): refuse it now, before anything is written.

    The runner makes the same check partition by partition while planning
    (`StreamedPlanner(check_free_ids=True)`); this is it for a plan held in memory."""
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
            raise PlanError(new_key_on_taken_id(key, change.key, taken[change.key], source_name))
