"""The planner beyond its memory bound: both sides set aside on disk in partitions, the same
plan and the same errors as in memory."""

import gc
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sequence_runner.domain.plan_checks import check_creates_have_free_ids
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.planner import PlanBound, StreamedPlanner, plan
from sequence_runner.domain.records import PlanError, SourceEntry

MAPPING = {"uid": "id", "mail": "mail"}


def people(count: int) -> list[SourceEntry]:
    return [
        SourceEntry(line=i + 2, fields={"id": f"u{i:05d}", "mail": f"u{i}@x"}) for i in range(count)
    ]


def directory(count: int) -> list[dict[str, Any]]:
    """90% of the people, one in ten of them with an old mail, and some who left."""
    records = [
        {"_id": f"u{i:05d}", "uid": f"u{i:05d}", "mail": f"old{i}@x" if i % 7 == 0 else f"u{i}@x"}
        for i in range(count)
        if i % 10 != 0
    ]
    records += [{"_id": f"gone{i}", "uid": f"gone{i}", "mail": "g@x"} for i in range(count // 20)]
    return records


def small(directory_path: Path) -> PlanBound:
    # 200 records in memory where the plan has 2,000 on each side: split in 8, then again.
    return PlanBound(memory_records=200, partitions=8, directory=str(directory_path))


def test_a_plan_larger_than_the_bound_is_the_plan_computed_in_memory(tmp_path: Path) -> None:
    source, target = people(2000), directory(2000)
    in_memory = plan(source, target, "uid", MAPPING, delete_missing=True)
    with StreamedPlanner("uid", MAPPING, True, bound=small(tmp_path)) as planner:
        planner.add_source(source[:700])
        planner.add_source(source[700:])
        planner.add_target(iter(target))
        assert planner.spilled
        streamed = planner.finish()
        assert list(tmp_path.iterdir())  # on disk, not in memory
        changes = list(streamed.changes())
        assert streamed.counts == in_memory.counts
        # Same changes in the same order: creates and updates in source order, deletes in
        # target order, numbered 0, 1, …
        assert changes == list(in_memory.changes)
        assert changes == list(streamed.changes())  # read back again, as the store does
        # Digested as it was made: the digest of the changes read back, as approvals hold it.
        assert streamed.digest == plan_digest(changes) == plan_digest(in_memory.changes)
    assert in_memory.counts.model_dump() == {
        "create": 200,
        "update": 257,
        "delete": 100,
        "unchanged": 1543,
        "target_size": 1900,
        "disable": 0,
    }
    assert not list(tmp_path.iterdir())  # closed: nothing left behind


@pytest.mark.parametrize("spilled", [True, False])
def test_a_planner_told_not_to_digest_gives_the_same_changes_and_no_digest(
    tmp_path: Path, spilled: bool
) -> None:
    # A directory target digests its changes as it places them (the DN is approved with
    # them): the planner's own digest would be thrown away, so it is not made.
    source, target = people(2000), directory(2000)
    bound = small(tmp_path) if spilled else PlanBound(directory=str(tmp_path))
    plans = []
    for digests in (True, False):
        with StreamedPlanner("uid", MAPPING, True, bound=bound, digests=digests) as planner:
            planner.add_source(source)
            planner.add_target(target)
            assert planner.spilled is spilled
            made = planner.finish()
            plans.append((made.digest, made.counts, list(made.changes())))
    (digest, counts, changes), (no_digest, counts_too, changes_too) = plans
    assert (no_digest, counts_too, changes_too) == (None, counts, changes)
    assert digest == plan_digest(changes)


def plan_spilled(
    source: list[SourceEntry],
    target: list[dict[str, Any]],
    tmp_path: Path,
    check_free_ids: bool = False,
) -> None:
    with StreamedPlanner(
        "uid", MAPPING, True, "people.csv", bound=small(tmp_path), check_free_ids=check_free_ids
    ) as planner:
        planner.add_source(source)
        planner.add_target(target)
        planner.finish()


def _errors(source: list[SourceEntry], target: list[dict[str, Any]], tmp_path: Path) -> str:
    with pytest.raises(PlanError) as in_memory:
        plan(source, target, "uid", MAPPING, True, "people.csv")
    with pytest.raises(PlanError) as spilled:
        plan_spilled(source, target, tmp_path)
    assert str(spilled.value) == str(in_memory.value)
    return str(spilled.value)


def test_a_duplicate_key_beyond_the_bound_names_both_lines(tmp_path: Path) -> None:
    source = people(2000)
    source.insert(1500, SourceEntry(line=9999, fields={"id": "u00042", "mail": "again@x"}))
    assert _errors(source, directory(2000), tmp_path) == (
        "people.csv: duplicate key uid='u00042' at lines 44 and 9999"
    )


def test_the_first_of_several_duplicates_in_source_order_is_named(tmp_path: Path) -> None:
    source = people(2000)
    source.append(SourceEntry(line=5000, fields={"id": "u01999", "mail": "x@x"}))
    source.append(SourceEntry(line=5001, fields={"id": "u00003", "mail": "x@x"}))
    assert "at lines 2001 and 5000" in _errors(source, directory(2000), tmp_path)


def test_a_key_that_differs_only_by_type_is_found_in_its_partition(tmp_path: Path) -> None:
    target = [*directory(2000), {"_id": 777777, "uid": 777777, "mail": "n@x"}]
    source = [*people(2000), SourceEntry(line=3000, fields={"id": "777777", "mail": "n@x"})]
    assert _errors(source, target, tmp_path).startswith(
        "people.csv: line 3000: uid='777777' is text but the target holds uid=777777 as a number"
    )


def test_two_target_records_with_one_key_beyond_the_bound(tmp_path: Path) -> None:
    target = [*directory(2000), {"_id": "other", "uid": "u00005", "mail": "x@x"}]
    assert "the target holds two records with uid='u00005'" in _errors(
        people(2000), target, tmp_path
    )


def test_a_new_key_on_a_taken_id_is_refused_beyond_the_bound(tmp_path: Path) -> None:
    source = people(2000)
    target = [r for r in directory(2000) if r["uid"] != "u00010"]
    target.append({"_id": "u00010", "uid": "x9", "mail": "x@x"})
    in_memory = plan(source, target, "uid", MAPPING, True, "people.csv")
    with pytest.raises(PlanError) as checked:
        check_creates_have_free_ids(in_memory, target, "uid", "people.csv")
    with pytest.raises(PlanError) as spilled:
        plan_spilled(source, target, tmp_path, check_free_ids=True)
    assert str(spilled.value) == str(checked.value)
    assert "uid='u00010' is new, but the target record with uid='x9'" in str(spilled.value)


def test_a_record_error_is_raised_as_the_record_is_read(tmp_path: Path) -> None:
    def records() -> Iterator[SourceEntry]:
        yield from people(1000)
        yield SourceEntry(line=1002, fields={"id": "", "mail": "x@x"})
        raise AssertionError("read past the bad record")

    planner = StreamedPlanner("uid", MAPPING, True, "people.csv", bound=small(tmp_path))
    with pytest.raises(PlanError, match=r"people\.csv: line 1002: the key attribute 'uid'"):
        planner.add_source(records())
    planner.close()


def test_the_garbage_collector_runs_again_after_planning_even_after_an_error(
    tmp_path: Path,
) -> None:
    assert gc.isenabled()
    source = [*people(300), SourceEntry(line=999, fields={"id": "u00001", "mail": "x@x"})]
    with pytest.raises(PlanError):
        plan_spilled(source, directory(300), tmp_path)
    assert gc.isenabled()
    plan_spilled(people(300), directory(300), tmp_path)
    assert gc.isenabled()


def test_collections_are_rarer_while_a_plan_is_read_and_as_before_once_it_is_closed(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    first = StreamedPlanner("uid", MAPPING, True, bound=small(tmp_path))
    second = StreamedPlanner("uid", MAPPING, True, bound=small(tmp_path))
    first.add_source(people(300))
    relaxed = gc.get_threshold()
    assert relaxed[0] > before[0]
    assert relaxed[1:] == before[1:]
    second.add_source(people(300))
    first.add_target(directory(300))
    first.finish()
    first.close()
    assert gc.get_threshold() == relaxed  # the second plan is still being read
    first.close()  # closing twice gives nothing back twice
    assert gc.get_threshold() == relaxed
    second.close()
    assert gc.get_threshold() == before
    abandoned = StreamedPlanner("uid", MAPPING, True, bound=small(tmp_path))
    abandoned.add_source(people(10))
    del abandoned  # never closed: given back when it is freed
    gc.collect()
    assert gc.get_threshold() == before


# Pairs (stored in the target, wanted by the source) a document store keeps apart, and pairs it
# holds as the same value; dates and decimals (from a SQL source) are set aside on disk another
# way than text and numbers, and compared the same.
KEPT_APART = [(1, True), (0, False), (True, 1), ([1], [True]), ({"a": 1}, {"a": True}), ("1", 1)]
THE_SAME = [
    (1, 1.0),
    (float("nan"), float("nan")),
    ([{"a": "x"}], [{"a": "x"}]),
    (date(2026, 1, 2), date(2026, 1, 2)),
    (Decimal("1.50"), Decimal("1.5")),
]


def test_values_are_compared_as_the_target_stores_them_beyond_the_bound(tmp_path: Path) -> None:
    pairs = [*KEPT_APART, *THE_SAME, (date(2026, 1, 2), date(2026, 1, 3))]
    source = [
        SourceEntry(line=i + 2, fields={"id": f"u{i:05d}", "mail": f"u{i}@x", "v": "same"})
        for i in range(2000)
    ]
    target: list[dict[str, Any]] = [
        {"_id": f"u{i:05d}", "uid": f"u{i:05d}", "mail": f"u{i}@x", "v": "same"}
        for i in range(2000)
    ]
    for n, (stored, wanted) in enumerate(pairs):
        source[n * 97].fields["v"] = wanted
        target[n * 97]["v"] = stored
    mapping = {**MAPPING, "v": "v"}
    with StreamedPlanner("uid", mapping, True, bound=small(tmp_path)) as planner:
        planner.add_source(source)
        planner.add_target(target)
        assert planner.spilled
        streamed = planner.finish()
        changes = list(streamed.changes())
    # Values of every kind (dates, Decimals, NaN) digested as the plan's changes are.
    assert streamed.digest == plan_digest(changes)
    updated = {c.key: c.before for c in changes if c.action == "update"}
    # By position: `(1, True) in THE_SAME` is true in Python, which is the very confusion.
    kept_apart = [*range(len(KEPT_APART)), len(pairs) - 1]
    assert updated == {f"u{n * 97:05d}": {"v": pairs[n][0]} for n in kept_apart}
    assert [c.action for c in changes] == ["update"] * (len(KEPT_APART) + 1)


def entries() -> list[SourceEntry]:
    """People of a directory (known by DN), some with a number as key."""
    return [
        SourceEntry(
            line=i + 2,
            fields={"id": i if i % 3 == 0 else f"u{i:05d}", "mail": f"u{i}@x"},
            dn=f"uid=u{i},ou=people" if i % 2 else None,
        )
        for i in range(2000)
    ]


def records_of(source: list[SourceEntry]) -> list[dict[str, Any]]:
    """Their records in a target: some known by `_id` only, some without a mail, some changed."""
    target: list[dict[str, Any]] = []
    for n, entry in enumerate(source[100:]):
        record: dict[str, Any] = {"_id": entry.fields["id"], "mail": entry.fields["mail"]}
        if n % 5:
            record["uid"] = entry.fields["id"]
        if n % 7 == 0:
            del record["mail"]
        if n % 11 == 0:
            record["mail"] = "old@x"
        target.append(record)
    return target


@pytest.mark.parametrize("bound", [None, "small"])
def test_records_handed_in_lists_plan_as_records_handed_one_by_one(
    tmp_path: Path, bound: str | None
) -> None:
    # Lists are keyed a slice at a time, other iterables record by record: the same plan.
    source = entries()
    target = records_of(source)
    plans = []
    for feed in (list, iter):
        with StreamedPlanner(
            "uid", MAPPING, True, bound=small(tmp_path) if bound else None, check_free_ids=True
        ) as planner:
            planner.add_source(feed(source))
            planner.add_target(feed(target))
            streamed = planner.finish()
            plans.append((streamed.counts, list(streamed.changes())))
            # In memory and beyond the bound, digested as the changes read back are.
            assert streamed.digest == plan_digest(plans[-1][1])
    assert plans[0] == plans[1]
    counts = plans[0][0]
    assert (counts.create, counts.update) == (100, 1900 - counts.unchanged)
    assert counts.update > 0


def test_a_record_error_in_a_list_names_that_record(tmp_path: Path) -> None:
    source = people(1500)
    source[1203] = SourceEntry(line=1205, fields={"mail": "x@x"})
    planner = StreamedPlanner("uid", MAPPING, True, "people.csv", bound=small(tmp_path))
    with pytest.raises(PlanError, match=r"people\.csv: line 1205: source field 'id'"):
        planner.add_source(source)
    planner.close()


def test_a_duplicate_directory_entry_in_a_list_names_both_dns(tmp_path: Path) -> None:
    source = [
        SourceEntry(line=0, fields=person.fields, dn=f"uid={person.fields['id']},ou=people")
        for person in people(2000)
    ]
    source.append(SourceEntry(line=0, fields={"id": "u00007", "mail": "x@x"}, dn="uid=again"))
    with pytest.raises(PlanError, match=r"key uid='u00007' at uid=u00007,ou=people and uid=again"):
        plan_spilled(source, directory(2000), tmp_path)
