"""The threshold rule at its boundaries: limit - 1 passes, the limit stops."""

from datetime import UTC, datetime

import pytest
from provisioning_common.definitions import ACTIONS, Action, Thresholds
from provisioning_common.events import Approval, PlanCounts
from threshold_guard.domain.rule import Blocked, Released, evaluate, percent_limit_records


def counts(target_size: int = 0, **planned: int) -> PlanCounts:
    return PlanCounts(
        create=planned.get("create", 0),
        update=planned.get("update", 0),
        delete=planned.get("delete", 0),
        disable=planned.get("disable", 0),
        unchanged=0,
        target_size=target_size,
    )


def only(action: Action, **limit: float) -> Thresholds:
    return Thresholds.model_validate({action: limit})


def approval(**approved: int) -> Approval:
    return Approval(
        create=approved.get("create", 0),
        update=approved.get("update", 0),
        delete=approved.get("delete", 0),
        disable=approved.get("disable", 0),
        validated_by="alice",
        validated_at=datetime(2026, 1, 1, tzinfo=UTC),
        plan_id="p1",
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_a_count_limit_lets_one_less_through(action: Action) -> None:
    decision = evaluate(counts(100, **{action: 9}), only(action, count=10), None)
    assert decision == Released("within_thresholds")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_count_limit_stops_at_the_limit(action: Action) -> None:
    decision = evaluate(counts(100, **{action: 10}), only(action, count=10), None)
    assert isinstance(decision, Blocked)
    assert decision.threshold.action == action
    assert decision.threshold.limit == "count"
    assert decision.threshold.limit_value == 10
    assert decision.threshold.actual == 10
    assert decision.above_approval is False


@pytest.mark.parametrize("action", ACTIONS)
def test_a_percent_limit_lets_one_less_through(action: Action) -> None:
    # 10 % of 30 records is 3 records.
    decision = evaluate(counts(30, **{action: 2}), only(action, percent=10), None)
    assert decision == Released("within_thresholds")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_percent_limit_stops_at_the_limit(action: Action) -> None:
    decision = evaluate(counts(30, **{action: 3}), only(action, percent=10), None)
    assert isinstance(decision, Blocked)
    assert decision.threshold.limit == "percent"
    assert decision.threshold.limit_value == 10
    assert decision.threshold.limit_records == 3
    assert decision.threshold.actual == 3


def test_a_fractional_percent_limit_rounds_up_to_whole_records() -> None:
    # 5 % of 30 is 1.5: one record passes, two stop.
    assert percent_limit_records(5, 30) == 2
    assert evaluate(counts(30, delete=1), only("delete", percent=5), None) == Released(
        "within_thresholds"
    )
    assert isinstance(evaluate(counts(30, delete=2), only("delete", percent=5), None), Blocked)


def test_a_percent_limit_does_not_apply_to_an_empty_target() -> None:
    decision = evaluate(counts(0, create=1000), only("create", percent=1), None)
    assert decision == Released("within_thresholds")


def test_an_empty_target_is_still_governed_by_counts() -> None:
    decision = evaluate(counts(0, create=100), only("create", count=100, percent=1), None)
    assert isinstance(decision, Blocked)
    assert [hit.limit for hit in decision.hits] == ["count"]


def test_nothing_planned_never_reaches_a_limit() -> None:
    # A tiny percent of a tiny target rounds up to one record; zero planned is still fine.
    decision = evaluate(counts(1, delete=0), only("delete", percent=0.1), None)
    assert decision == Released("within_thresholds")


def test_the_first_hit_in_action_order_is_the_threshold_and_all_are_listed() -> None:
    thresholds = Thresholds.model_validate(
        {"create": {"count": 5}, "update": {"count": 1, "percent": 10}, "delete": {"count": 2}}
    )
    decision = evaluate(counts(10, create=1, update=1, delete=2), thresholds, None)
    assert isinstance(decision, Blocked)
    assert (decision.threshold.action, decision.threshold.limit) == ("update", "count")
    assert [(h.action, h.limit) for h in decision.hits] == [
        ("update", "count"),
        ("update", "percent"),
        ("delete", "count"),
    ]


def test_an_action_without_a_limit_is_not_checked() -> None:
    decision = evaluate(counts(10, create=1000, update=1000), only("delete", count=1), None)
    assert decision == Released("within_thresholds")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_approval_releases_up_to_the_approved_count(action: Action) -> None:
    decision = evaluate(
        counts(100, **{action: 12}), only(action, count=10), approval(**{action: 12})
    )
    assert decision == Released("within_approval")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_approval_stops_one_above_the_approved_count(action: Action) -> None:
    decision = evaluate(
        counts(100, **{action: 13}), only(action, count=10), approval(**{action: 12})
    )
    assert isinstance(decision, Blocked)
    assert decision.threshold.action == action
    assert decision.threshold.limit == "approved"
    assert decision.threshold.limit_value == 12
    assert decision.threshold.actual == 13
    assert decision.above_approval is True


def test_an_approval_never_lowers_a_limit() -> None:
    # Approved 2 deletions, now 5 are planned: still under the configured count of 10.
    decision = evaluate(counts(100, delete=5), only("delete", count=10), approval(delete=2))
    assert decision == Released("within_thresholds")


def test_an_approval_covers_only_its_own_actions() -> None:
    thresholds = Thresholds.model_validate({"create": {"count": 3}, "delete": {"count": 3}})
    decision = evaluate(counts(100, create=5, delete=3), thresholds, approval(create=5))
    assert isinstance(decision, Blocked)
    assert (decision.threshold.action, decision.threshold.limit) == ("delete", "approved")
    assert decision.threshold.limit_value == 0


def test_an_approval_with_nothing_over_a_limit_releases_within_thresholds() -> None:
    decision = evaluate(counts(100, create=1), only("create", count=10), approval(create=50))
    assert decision == Released("within_thresholds")


# Disables (deprovision: "disable") are their own count, held against the delete threshold
# together with the deletions.


def test_disables_and_deletions_together_reach_the_delete_threshold() -> None:
    below = evaluate(counts(100, delete=4, disable=5), only("delete", count=10), None)
    assert below == Released("within_thresholds")
    decision = evaluate(counts(100, delete=4, disable=6), only("delete", count=10), None)
    assert isinstance(decision, Blocked)
    assert (decision.threshold.action, decision.threshold.actual) == ("delete", 10)


def test_a_percent_delete_limit_counts_the_disables() -> None:
    # 10 % of 30 records is 3 records.
    decision = evaluate(counts(30, disable=3), only("delete", percent=10), None)
    assert isinstance(decision, Blocked)
    assert (decision.threshold.limit_records, decision.threshold.actual) == (3, 3)


def test_an_approval_of_disables_covers_them_and_no_more() -> None:
    approved = approval(disable=12)
    covered = evaluate(counts(100, disable=12), only("delete", count=10), approved)
    assert covered == Released("within_approval")
    above = evaluate(counts(100, disable=13), only("delete", count=10), approved)
    assert isinstance(above, Blocked)
    assert (above.threshold.limit, above.threshold.limit_value) == ("approved", 12)


def test_an_event_from_before_disables_were_counted_apart_reads_as_none() -> None:
    old = PlanCounts.model_validate(
        {"create": 1, "update": 0, "delete": 2, "unchanged": 0, "target_size": 5}
    )
    assert (old.disable, old.for_action("delete")) == (0, 2)
