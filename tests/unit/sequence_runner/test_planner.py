"""The planner: creates, updates, deletes and unchanged records, and the errors that name a line."""

from typing import Any

import pytest
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceEntry


def source(*rows: dict[str, Any]) -> list[SourceEntry]:
    return [SourceEntry(line=i + 2, fields=row) for i, row in enumerate(rows)]


MAPPING = {"uid": "employee_id", "mail": "email"}


def test_a_first_load_creates_every_record_mapped_to_target_attributes() -> None:
    result = plan(
        source(
            {"employee_id": "1", "email": "a@x", "ignored": "?"},
            {"employee_id": "2", "email": "b@x", "ignored": "?"},
        ),
        [],
        "uid",
        MAPPING,
        delete_missing=True,
    )
    assert result.counts.model_dump() == {
        "create": 2,
        "update": 0,
        "delete": 0,
        "unchanged": 0,
        "target_size": 0,
        "disable": 0,
    }
    assert [(c.seq, c.action, c.key, c.before, c.after) for c in result.changes] == [
        (0, "create", "1", None, {"uid": "1", "mail": "a@x"}),
        (1, "create", "2", None, {"uid": "2", "mail": "b@x"}),
    ]


def test_without_a_mapping_the_source_fields_are_the_attributes() -> None:
    result = plan(source({"cn": "admins", "size": 3}), [], "cn", None, delete_missing=False)
    assert result.changes[0].after == {"cn": "admins", "size": 3}


def test_updates_record_the_changed_attributes_before_and_the_whole_record_after() -> None:
    target = [
        {"_id": "1", "uid": "1", "mail": "old@x", "extra": "kept"},
        {"_id": "2", "uid": "2", "mail": "b@x"},
    ]
    result = plan(
        source({"employee_id": "1", "email": "new@x"}, {"employee_id": "2", "email": "b@x"}),
        target,
        "uid",
        MAPPING,
        delete_missing=False,
    )
    assert (result.counts.update, result.counts.unchanged, result.counts.target_size) == (1, 1, 2)
    (change,) = result.changes
    assert change.action == "update"
    assert change.key == "1"
    assert change.before == {"mail": "old@x"}
    assert change.after == {"uid": "1", "mail": "new@x"}


def test_an_attribute_missing_from_the_target_record_is_an_update() -> None:
    result = plan(
        source({"employee_id": "1", "email": "a@x"}),
        [{"_id": "1", "uid": "1"}],
        "uid",
        MAPPING,
        delete_missing=False,
    )
    assert result.changes[0].before == {"mail": None}


def test_deletes_only_with_delete_missing() -> None:
    target = [{"_id": "1", "uid": "1", "mail": "a@x"}, {"_id": "9", "uid": "9", "mail": "z@x"}]
    records = source({"employee_id": "1", "email": "a@x"})
    kept = plan(records, target, "uid", MAPPING, delete_missing=False)
    assert kept.counts.delete == 0
    assert kept.changes == ()
    removed = plan(records, target, "uid", MAPPING, delete_missing=True)
    assert removed.counts.delete == 1
    (change,) = removed.changes
    assert (change.action, change.key, change.before, change.after) == (
        "delete",
        "9",
        {"uid": "9", "mail": "z@x"},
        None,
    )


def test_changes_are_ordered_creates_then_updates_then_deletes() -> None:
    target = [{"uid": "u", "mail": "old"}, {"uid": "d", "mail": "x"}]
    result = plan(
        source({"employee_id": "u", "email": "new"}, {"employee_id": "c", "email": "c"}),
        target,
        "uid",
        MAPPING,
        delete_missing=True,
    )
    assert [(c.seq, c.action) for c in result.changes] == [
        (0, "create"),
        (1, "update"),
        (2, "delete"),
    ]


def test_a_target_record_is_known_by_its_key_attribute_or_else_its_id() -> None:
    result = plan(
        source({"uid": "1", "mail": "a"}, {"uid": "2", "mail": "b"}),
        [{"_id": "1", "mail": "a"}, {"_id": "other", "uid": "2", "mail": "b"}],
        "uid",
        None,
        delete_missing=True,
    )
    # "1" lacks the uid attribute in the target, so it is an update adding it, written to the
    # record found by its _id.
    assert [(c.action, c.key, c.by_id) for c in result.changes] == [("update", "1", True)]
    assert result.counts.unchanged == 1


def test_a_duplicate_key_names_both_lines() -> None:
    with pytest.raises(PlanError, match=r"duplicate key uid='7' at lines 2 and 4"):
        plan(
            source(
                {"employee_id": "7", "email": "a"},
                {"employee_id": "8", "email": "b"},
                {"employee_id": "7", "email": "c"},
            ),
            [],
            "uid",
            MAPPING,
            delete_missing=False,
        )


@pytest.mark.parametrize("empty", ["", "  ", None])
def test_an_empty_key_names_the_line(empty: str | None) -> None:
    with pytest.raises(PlanError, match=r"line 3: the key attribute 'uid' is missing or empty"):
        plan(
            source({"employee_id": "1", "email": "a"}, {"employee_id": empty, "email": "b"}),
            [],
            "uid",
            MAPPING,
            delete_missing=False,
        )


def test_a_missing_key_attribute_without_mapping_names_the_line() -> None:
    with pytest.raises(PlanError, match=r"line 2: the key attribute 'uid'"):
        plan(source({"mail": "a"}), [], "uid", None, delete_missing=False)


def test_a_key_that_is_neither_string_nor_integer_is_refused() -> None:
    with pytest.raises(PlanError, match=r"line 2: .* must be a string or an integer, not list"):
        plan(source({"uid": ["1"]}), [], "uid", None, delete_missing=False)


def test_a_mapped_source_field_missing_from_a_record_names_the_line_and_field() -> None:
    with pytest.raises(PlanError, match=r"line 2: source field 'email' \(mapped to 'mail'\)"):
        plan(source({"employee_id": "1", "mail": "a"}), [], "uid", MAPPING, delete_missing=False)


@pytest.mark.parametrize("name", ["_id", "$set", "a.b"])
def test_attribute_names_a_document_store_would_misread_are_refused(name: str) -> None:
    with pytest.raises(PlanError, match=r"line 2: attribute name"):
        plan(source({"uid": "1", name: "x"}), [], "uid", None, delete_missing=False)


def test_integer_keys_from_json_sources_are_kept_as_integers() -> None:
    result = plan(source({"id": 5, "n": "x"}), [{"_id": 5, "id": 5, "n": "y"}], "id", None, False)
    assert [(c.action, c.key) for c in result.changes] == [("update", 5)]


def test_a_target_record_with_a_null_key_attribute_is_known_by_its_id() -> None:
    result = plan(
        source(),
        [{"_id": "u8", "uid": None}, {"_id": "x", "uid": "u9"}],
        "uid",
        None,
        delete_missing=True,
    )
    assert [(c.action, c.key, c.by_id) for c in result.changes] == [
        ("delete", "u8", True),
        ("delete", "u9", False),
    ]


def test_with_a_mapping_a_record_with_a_null_key_attribute_is_updated_by_its_id() -> None:
    # Holding just the mapped attributes, the record is kept as its values: the null is read
    # from there.
    mapping = {"uid": "id", "mail": "mail"}
    result = plan(
        [
            SourceEntry(line=2, fields={"id": "u8", "mail": "new"}),
            SourceEntry(line=3, fields={"id": "u9", "mail": "new"}),
        ],
        [{"_id": "u8", "uid": None, "mail": "old"}, {"_id": "u9", "uid": "u9", "mail": "old"}],
        "uid",
        mapping,
        delete_missing=False,
    )
    assert [(c.key, c.before, c.by_id) for c in result.changes] == [
        ("u8", {"uid": None, "mail": "old"}, True),
        ("u9", {"mail": "old"}, False),
    ]


def test_two_target_records_with_one_key_are_refused_rather_than_one_picked() -> None:
    # One is known by its key attribute, the other (without one) by its _id: a write by key
    # could reach either of them.
    with pytest.raises(
        PlanError, match=r"target holds two records with uid='1' \(_id '1' and _id 'x'\)"
    ):
        plan(
            source({"uid": "1"}),
            [{"_id": "1", "mail": "a"}, {"_id": "x", "uid": "1"}],
            "uid",
            None,
            delete_missing=False,
        )


@pytest.mark.parametrize("value", [True, ["1"], {"a": 1}])
def test_a_target_key_that_cannot_be_matched_is_refused(value: object) -> None:
    with pytest.raises(PlanError, match=r"the target record with _id 'x' has uid="):
        plan(source({"uid": "1"}), [{"_id": "x", "uid": value}], "uid", None, False)


@pytest.mark.parametrize(("source_key", "target_key"), [("1001", 1001), (1001, "1001"), ("-5", -5)])
def test_a_key_that_differs_from_the_targets_only_by_its_type_is_refused(
    source_key: str | int, target_key: str | int
) -> None:
    # A CSV gives text; a target loaded from JSON may hold numbers. Planning a create would
    # give the same person a second record (and, with delete_missing, delete the first).
    with pytest.raises(PlanError, match=rf"line 2: uid={source_key!r} is .* the target holds"):
        plan(
            source({"uid": source_key}),
            [{"_id": target_key, "uid": target_key}],
            "uid",
            None,
            delete_missing=True,
        )


def test_keys_alike_only_as_text_are_not_mistaken_for_each_other() -> None:
    result = plan(source({"uid": "007"}), [{"_id": 7, "uid": 7}], "uid", None, False)
    assert [(c.action, c.key) for c in result.changes] == [("create", "007")]


@pytest.mark.parametrize(
    ("stored", "wanted"),
    [(1, True), (0, False), (True, 1), ([1], [True]), ({"a": 1}, {"a": True}), ("1", 1)],
)
def test_values_a_document_store_keeps_apart_are_an_update(stored: object, wanted: object) -> None:
    result = plan(
        source({"uid": "1", "v": wanted}), [{"uid": "1", "v": stored}], "uid", None, False
    )
    assert [(c.action, c.before) for c in result.changes] == [("update", {"v": stored})]


@pytest.mark.parametrize(
    ("stored", "wanted"), [(1, 1.0), (float("nan"), float("nan")), ([{"a": "x"}], [{"a": "x"}])]
)
def test_values_the_target_already_holds_are_unchanged(stored: object, wanted: object) -> None:
    result = plan(
        source({"uid": "1", "v": wanted}), [{"uid": "1", "v": stored}], "uid", None, False
    )
    assert result.changes == ()
    assert result.counts.unchanged == 1


def test_errors_about_source_records_name_the_source() -> None:
    with pytest.raises(PlanError, match=r"^hr/people.csv: line 2: the key attribute 'uid'"):
        plan(source({"mail": "a"}), [], "uid", None, False, source_name="hr/people.csv")
    with pytest.raises(PlanError, match=r"^hr/people.csv: duplicate key uid='1' at lines 2 and 3"):
        plan(
            source({"uid": "1"}, {"uid": "1"}), [], "uid", None, False, source_name="hr/people.csv"
        )


def test_target_records_of_every_shape_are_deleted_and_updated_as_they_were_read() -> None:
    # Records holding just the mapped attributes in order are kept as their values; the others
    # (extra attributes, another order, one missing, `_id` last) as read. Either way a deletion
    # holds the very record, attributes in their order, and an update the old values.
    mapping = {"uid": "id", "mail": "mail", "sn": "sn"}
    source = [
        SourceEntry(line=2, fields={"id": "a", "mail": "a@new", "sn": "A"}),
        SourceEntry(line=3, fields={"id": "b", "mail": "b@x", "sn": "B"}),
        SourceEntry(line=4, fields={"id": "c", "mail": "c@x", "sn": "C2"}),
    ]
    target: list[dict[str, Any]] = [
        {"_id": "a", "uid": "a", "mail": "a@old", "sn": "A"},
        {"_id": "b", "sn": "B", "uid": "b", "mail": "b@x"},
        {"uid": "c", "mail": "c@x", "_id": "c", "sn": "C", "title": "boss"},
        {"_id": "d", "uid": "d", "mail": "d@x", "sn": "D"},
        {"_id": "e", "mail": "e@x", "uid": "e", "sn": "E", "title": "x"},
        {"_id": "f", "uid": "f", "mail": "f@x"},
    ]
    result = plan(source, target, key="uid", mapping=mapping, delete_missing=True)
    updates = [(c.key, c.before) for c in result.changes if c.action == "update"]
    assert updates == [("a", {"mail": "a@old"}), ("c", {"sn": "C"})]
    deletes = [c.before for c in result.changes if c.action == "delete"]
    assert [list(before.items()) for before in deletes if before is not None] == [
        [("uid", "d"), ("mail", "d@x"), ("sn", "D")],
        [("mail", "e@x"), ("uid", "e"), ("sn", "E"), ("title", "x")],
        [("uid", "f"), ("mail", "f@x")],
    ]
    assert result.counts.unchanged == 1


def test_a_number_in_the_source_is_not_the_true_the_target_holds_with_a_mapping() -> None:
    mapping = {"uid": "id", "active": "active"}
    source = [SourceEntry(line=2, fields={"id": "a", "active": 1})]
    target = [{"_id": "a", "uid": "a", "active": True}]
    result = plan(source, target, key="uid", mapping=mapping, delete_missing=False)
    assert [(c.action, c.before) for c in result.changes] == [("update", {"active": True})]
