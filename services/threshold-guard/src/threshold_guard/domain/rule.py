"""The threshold rule: whether a sequence's plan may be written or must wait for an operator."""

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from provisioning_common.definitions import ACTIONS, Action, ThresholdLimit, Thresholds
from provisioning_common.events import Approval, PlanCounts, ThresholdHit


@dataclass(frozen=True)
class Released:
    reason: Literal["within_thresholds", "within_approval"]


@dataclass(frozen=True)
class Blocked:
    threshold: ThresholdHit
    hits: tuple[ThresholdHit, ...]
    above_approval: bool


Decision = Released | Blocked


def percent_limit_records(percent: float, target_size: int) -> int:
    """The percent limit as a number of records of this target (rounded up)."""
    # Decimal of the written value: 10% of 30 must be exactly 3, not 3.0000000000000004.
    return math.ceil(Decimal(str(percent)) * target_size / 100)


def limits_reached(
    action: Action, limit: ThresholdLimit, planned: int, target_size: int
) -> list[ThresholdHit]:
    """Every configured limit of one action that the planned number reaches."""
    if planned < 1:
        return []
    hits: list[ThresholdHit] = []
    if limit.count is not None and planned >= limit.count:
        hits.append(
            ThresholdHit(action=action, limit="count", limit_value=limit.count, actual=planned)
        )
    # A first load into an empty target is governed by counts alone.
    if limit.percent is not None and target_size > 0:
        records = percent_limit_records(limit.percent, target_size)
        if planned >= records:
            hits.append(
                ThresholdHit(
                    action=action,
                    limit="percent",
                    limit_value=limit.percent,
                    actual=planned,
                    limit_records=records,
                )
            )
    return hits


def approved_count(approval: Approval, action: Action) -> int:
    """What the approval allows of the action: deletions and disables together for `delete`,
    as the plan's counts are held against the delete threshold."""
    if action == "delete":
        return approval.delete + approval.disable
    value: int = getattr(approval, action)
    return value


def evaluate(counts: PlanCounts, thresholds: Thresholds, approval: Approval | None) -> Decision:
    """Release the plan, or block it on the first limit reached in action order.

    An approval raises the limits of the actions it covers to the approved counts; it never
    lowers them: an action below its configured thresholds passes whatever was approved.
    """
    hits: list[ThresholdHit] = []
    covered_by_approval = False
    for action in ACTIONS:
        limit = thresholds.for_action(action)
        if limit is None:
            continue
        planned = counts.for_action(action)
        reached = limits_reached(action, limit, planned, counts.target_size)
        if not reached:
            continue
        if approval is None:
            hits.extend(reached)
            continue
        approved = approved_count(approval, action)
        if planned <= approved:
            covered_by_approval = True
        else:
            hits.append(
                ThresholdHit(action=action, limit="approved", limit_value=approved, actual=planned)
            )
    if hits:
        return Blocked(
            threshold=hits[0],
            hits=tuple(hits),
            above_approval=any(hit.limit == "approved" for hit in hits),
        )
    return Released("within_approval" if covered_by_approval else "within_thresholds")
