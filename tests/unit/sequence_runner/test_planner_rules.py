"""The planner with a target's rules: values as the target stores them, absent attributes as
empty, and disabling instead of deleting (counted as deletions, once)."""

from collections.abc import Mapping
from typing import Any

import pytest
from sequence_runner.adapters.connectors.ldap_values import as_directory_record
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceEntry, TargetRules

MAPPING = {"uid": "id", "mail": "mail"}


def source(*rows: dict[str, Any]) -> list[SourceEntry]:
    return [SourceEntry(line=i + 2, fields=row) for i, row in enumerate(rows)]


def locked(record: Mapping[str, Any]) -> bool:
    return record.get("locked") is not None


DIRECTORY = TargetRules(stored_as=as_directory_record, absent_is_empty=True)
DISABLING = TargetRules(
    stored_as=lambda a: {**as_directory_record(a), "locked": None},
    absent_is_empty=True,
    deprovision="disable",
    is_disabled=locked,
)


def test_values_are_compared_as_the_target_stores_them() -> None:
    result = plan(
        source({"id": 7, "mail": ["b@x", "a@x"]}, {"id": "8", "mail": ""}),
        [{"uid": "7", "mail": ["a@x", "b@x"]}, {"uid": "8"}],
        "uid",
        MAPPING,
        delete_missing=False,
        rules=DIRECTORY,
    )
    assert result.changes == ()
    assert result.counts.unchanged == 2


def test_an_emptied_attribute_is_an_update_that_removes_it() -> None:
    result = plan(
        source({"id": "8", "mail": ""}),
        [{"uid": "8", "mail": "old@x"}],
        "uid",
        MAPPING,
        delete_missing=False,
        rules=DIRECTORY,
    )
    (change,) = result.changes
    assert (change.action, change.before, change.after) == (
        "update",
        {"mail": "old@x"},
        {"uid": "8", "mail": None},
    )


def test_records_that_left_are_disabled_once_and_counted_as_disables() -> None:
    target: list[dict[str, Any]] = [
        {"uid": "1", "mail": "a@x", "locked": None},
        {"uid": "2", "mail": "b@x", "locked": None},
        {"uid": "3", "mail": "c@x", "locked": "000001010000Z"},
    ]
    result = plan(source({"id": "1", "mail": "a@x"}), target, "uid", MAPPING, True, rules=DISABLING)
    assert [(c.action, c.key) for c in result.changes] == [("disable", "2")]
    counts = result.counts
    assert (counts.delete, counts.disable, counts.unchanged) == (0, 1, 2)
    # The delete threshold is held against deletions and disables together.
    assert counts.for_action("delete") == 1


def test_a_disabled_record_that_comes_back_is_enabled_by_an_update() -> None:
    target = [{"uid": "3", "mail": "c@x", "locked": "000001010000Z"}]
    result = plan(source({"id": "3", "mail": "c@x"}), target, "uid", MAPPING, True, rules=DISABLING)
    (change,) = result.changes
    assert (change.action, change.before) == ("update", {"locked": "000001010000Z"})


def test_without_delete_missing_nothing_is_disabled() -> None:
    target = [{"uid": "2", "mail": "b@x", "locked": None}]
    result = plan(source(), target, "uid", MAPPING, False, rules=DISABLING)
    assert result.changes == ()


def test_an_error_about_a_directory_record_names_its_dn() -> None:
    record = SourceEntry(line=1, fields={"id": ""}, dn="uid=x,ou=staff,dc=example,dc=org")
    with pytest.raises(PlanError, match=r"^staff: uid=x,ou=staff,dc=example,dc=org: the key"):
        plan([record], [], "uid", {"uid": "id"}, False, "staff", rules=DIRECTORY)


@pytest.mark.parametrize("in_lists", [True, False])
def test_an_absent_attribute_is_an_empty_value_with_text_values_compared_as_tuples(
    in_lists: bool,
) -> None:
    # Text or null values with a mapping and no `stored_as`: the planner compares the values
    # as tuples and tells the old values without `_same`; the rules are the same.
    rows = source(
        {"id": "a", "mail": None},  # absent in the target: the same as empty
        {"id": "b", "mail": None},  # "x" in the target: cleared
        {"id": "c", "mail": "c@x"},  # absent in the target: set
        {"id": "d", "mail": "d@x"},  # the same
        {"id": "e", "mail": "e@x"},  # null in the target: set
    )
    target: list[dict[str, Any]] = [
        {"uid": "a"},
        {"uid": "b", "mail": "x"},
        {"uid": "c"},
        {"uid": "d", "mail": "d@x"},
        {"uid": "e", "mail": None},
    ]
    result = plan(
        rows if in_lists else iter(rows),
        target if in_lists else iter(target),
        "uid",
        MAPPING,
        delete_missing=False,
        rules=TargetRules(absent_is_empty=True),
    )
    updated = {c.key: (c.before, c.after) for c in result.changes}
    assert updated == {
        "b": ({"mail": "x"}, {"uid": "b", "mail": None}),
        "c": ({"mail": None}, {"uid": "c", "mail": "c@x"}),
        "e": ({"mail": None}, {"uid": "e", "mail": "e@x"}),
    }
    assert result.counts.unchanged == 2
