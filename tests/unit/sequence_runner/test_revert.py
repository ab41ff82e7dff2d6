"""The inverse of each kind of applied change against the record the target holds now."""

from typing import Any

from sequence_runner.domain.records import PlannedChange, TargetRules
from sequence_runner.domain.revert import invert

RULES = TargetRules()
DIRECTORY = TargetRules(absent_is_empty=True)


def change(action: Any, before: Any, after: Any) -> PlannedChange:
    return PlannedChange(seq=0, action=action, key="u1", before=before, after=after)


CREATED = change("create", None, {"uid": "u1", "mail": "a@x"})
UPDATED = change("update", {"mail": "old@x"}, {"uid": "u1", "mail": "new@x", "sn": "One"})
DELETED = change("delete", {"_id": "u1", "uid": "u1", "mail": "a@x"}, None)


def test_a_creation_becomes_a_deletion_of_the_record_as_it_is() -> None:
    current = {"_id": "u1", "uid": "u1", "mail": "a@x", "other": 1}
    inverse = invert(CREATED, current, RULES, include_conflicts=False)
    assert inverse.conflict is None
    assert inverse.change is not None
    assert (inverse.change.action, inverse.change.before) == ("delete", current)


def test_a_created_record_that_is_gone_is_a_conflict_with_nothing_to_write() -> None:
    for include in (False, True):
        inverse = invert(CREATED, None, RULES, include_conflicts=include)
        assert inverse.change is None
        assert inverse.conflict is not None
        assert (inverse.conflict.reason, inverse.conflict.current) == ("gone", None)


def test_a_created_record_changed_since_is_left_alone_unless_included() -> None:
    current = {"_id": "u1", "uid": "u1", "mail": "by-hand@x"}
    alone = invert(CREATED, current, RULES, include_conflicts=False)
    assert alone.change is None
    assert alone.conflict is not None
    assert (alone.conflict.reason, alone.conflict.current, alone.conflict.forced) == (
        "changed",
        current,
        None,
    )
    forced = invert(CREATED, current, RULES, include_conflicts=True)
    assert forced.change is not None
    assert forced.change.action == "delete"
    assert forced.conflict is not None
    assert forced.conflict.forced == forced.change


def test_an_update_restores_only_the_attributes_it_changed() -> None:
    current = {"_id": "u1", "uid": "u1", "mail": "new@x", "sn": "One", "phone": "1"}
    inverse = invert(UPDATED, current, RULES, include_conflicts=False)
    assert inverse.conflict is None
    assert inverse.change is not None
    assert inverse.change.action == "update"
    assert inverse.change.before == {"mail": "new@x"}
    assert inverse.change.after == {"uid": "u1", "mail": "old@x", "sn": "One"}


def test_an_updated_record_changed_since_is_forced_on_the_changed_attributes_only() -> None:
    # sn was changed by hand too: forcing the revert puts mail back and keeps the new sn.
    current = {"_id": "u1", "uid": "u1", "mail": "hand@x", "sn": "Hand"}
    assert invert(UPDATED, current, RULES, include_conflicts=False).change is None
    forced = invert(UPDATED, current, RULES, include_conflicts=True)
    assert forced.change is not None
    assert forced.change.before == {"mail": "hand@x"}
    assert forced.change.after == {"uid": "u1", "mail": "old@x", "sn": "Hand"}


def test_an_updated_record_that_is_gone_is_created_again_only_when_included() -> None:
    alone = invert(UPDATED, None, RULES, include_conflicts=False)
    assert alone.change is None
    assert alone.conflict is not None
    assert alone.conflict.reason == "gone"
    forced = invert(UPDATED, None, RULES, include_conflicts=True)
    assert forced.change is not None
    assert forced.change.action == "create"
    assert forced.change.after == {"uid": "u1", "mail": "old@x", "sn": "One"}


def test_a_deletion_creates_the_record_again_from_before_without_its_id() -> None:
    inverse = invert(DELETED, None, RULES, include_conflicts=False)
    assert inverse.conflict is None
    assert inverse.change is not None
    assert (inverse.change.action, inverse.change.after) == ("create", {"uid": "u1", "mail": "a@x"})


def test_a_deleted_record_that_is_back_is_a_conflict() -> None:
    current = {"_id": "u1", "uid": "u1", "mail": "back@x"}
    alone = invert(DELETED, current, RULES, include_conflicts=False)
    assert alone.change is None
    assert alone.conflict is not None
    assert alone.conflict.reason == "back"
    forced = invert(DELETED, current, RULES, include_conflicts=True)
    assert forced.change is not None
    assert (forced.change.action, forced.change.before) == ("update", {"mail": "back@x"})


def test_a_directory_compares_an_absent_attribute_with_an_empty_one() -> None:
    created = change("create", None, {"uid": "u1", "cn": "A", "mail": None})
    inverse = invert(created, {"uid": "u1", "cn": "A"}, DIRECTORY, include_conflicts=False)
    assert inverse.conflict is None
    assert inverse.change is not None
    assert inverse.change.action == "delete"
