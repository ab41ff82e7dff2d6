"""Checks of a plan against its target: a new key that is another record's `_id` is refused."""

import pytest
from sequence_runner.domain.plan_checks import check_creates_have_free_ids
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceEntry


def source(*keys: str) -> list[SourceEntry]:
    return [SourceEntry(line=i + 2, fields={"uid": key}) for i, key in enumerate(keys)]


def test_a_new_key_that_is_the_id_of_a_record_with_another_key_is_refused() -> None:
    target = [{"_id": "u2", "uid": "x9"}]
    planned = plan(source("u1", "u2"), target, "uid", None, False)
    with pytest.raises(PlanError, match="uid='u2' is new, but the target record with uid='x9'"):
        check_creates_have_free_ids(planned, target, "uid", "people.csv")


@pytest.mark.parametrize(
    "target",
    [
        [{"_id": "u2", "uid": "u2"}],  # stored as the connector stores it
        [{"_id": "u2"}],  # no key attribute: known by its _id, so updated
        [{"_id": "other", "uid": "x9"}],  # another _id altogether
    ],
)
def test_keys_whose_id_is_free_or_their_own_pass(target: list[dict[str, str]]) -> None:
    planned = plan(source("u1", "u2"), target, "uid", None, False)
    check_creates_have_free_ids(planned, target, "uid")
