"""Nothing reaches a target an operator did not see and approve: a sequence stopped at its
threshold leaves its target as it was, not even a new collection or index in it."""

import uuid

import pytest

from tests.faults.conftest import Figures
from tests.faults.scoring import count_blocked_writes, settle
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


def test_a_blocked_first_load_creates_nothing_in_the_target(stack: Stack, figures: Figures) -> None:
    """A first load stopped at its creation threshold: the target gets no record, collection
    or index"""
    name = f"blocked-{uuid.uuid4().hex[:8]}"
    stack.define(
        {
            "id": name,
            "name": name,
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "inline"},
                    "target": {"type": "mongo", "collection": name},
                    "key": "uid",
                    "thresholds": {"create": {"count": 3}},
                }
            ],
        }
    )
    job_id = stack.submit(name, {"people": [{"uid": f"u{i}"} for i in range(5)]})
    statuses = settle(stack, {job_id: "THRESHOLD"}, figures, timeout=60)
    records = count_blocked_writes(stack, name, figures)
    created = name in stack.target.list_collection_names()
    if created:
        indexes = sorted(stack.target[name].index_information())
        figures.writes_while_blocked += 1
        figures.notes.append(f"the blocked sequence created its collection, indexes {indexes}")

    assert statuses == {job_id: "THRESHOLD"}
    assert records == 0
    assert not created, figures.notes
