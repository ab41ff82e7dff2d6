"""The planned changes of a directory sequence as an operator reads them: each change with the
DN it is written to, disables as their own action (filterable), and their own count."""

import uuid
from datetime import UTC, datetime

import pytest
from provisioning_common.events import PlanCounts
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

from tests.integration.api.harness import ApiHarness, insert_jobs, job_doc, sequence_doc

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

BASE = "ou=people,dc=example,dc=org"


async def a_blocked_directory_job(api: ApiHarness) -> str:
    plan_id = f"plan-{uuid.uuid4().hex[:8]}"
    sequence = sequence_doc(
        0,
        "people",
        "THRESHOLD",
        plan_id=plan_id,
        planned={
            "create": 1,
            "update": 0,
            "delete": 0,
            "disable": 2,
            "unchanged": 5,
            "target_size": 7,
        },
        threshold={"action": "delete", "limit": "count", "limit_value": 2, "actual": 2},
    )
    (job_id,) = await insert_jobs(api, job_doc(status="THRESHOLD", sequences=[sequence]))
    # Stored by the runner's own plan repository, as a directory plan is: each change with
    # its DN, in chunks of one action.
    changes = [
        PlannedChange(0, "create", "cy", None, {"uid": "cy", "sn": "Oh"}, dn=f"uid=cy,{BASE}"),
        *(
            PlannedChange(
                seq, "disable", uid, {"uid": uid, "sn": "X"}, None, dn=f"uid={uid},ou=east,{BASE}"
            )
            for seq, uid in ((1, "ann"), (2, "bob"))
        ),
    ]
    counts = PlanCounts(create=1, update=0, delete=0, disable=2, unchanged=5, target_size=7)
    plan = StoredPlan(plan_id, job_id, 0, 1, counts, datetime.now(UTC), plan_digest(changes))
    await MongoPlanRepository(api.db).save(plan, changes)
    return job_id


async def test_each_planned_change_shows_its_dn(api: ApiHarness) -> None:
    job_id = await a_blocked_directory_job(api)
    answer = await api.client.get(
        f"/api/v1/jobs/{job_id}/sequences/0/changes", headers=api.auth("viewer")
    )
    assert answer.status_code == 200, answer.text
    assert [(c["action"], c["key"], c["dn"]) for c in answer.json()["items"]] == [
        ("create", "cy", f"uid=cy,{BASE}"),
        ("disable", "ann", f"uid=ann,ou=east,{BASE}"),
        ("disable", "bob", f"uid=bob,ou=east,{BASE}"),
    ]


async def test_disables_are_their_own_action_in_the_filter_and_the_counts(
    api: ApiHarness,
) -> None:
    job_id = await a_blocked_directory_job(api)
    disables = await api.client.get(
        f"/api/v1/jobs/{job_id}/sequences/0/changes?action=disable", headers=api.auth("viewer")
    )
    assert disables.status_code == 200, disables.text
    assert [c["key"] for c in disables.json()["items"]] == ["ann", "bob"]
    assert disables.json()["total"] == 2
    deletes = await api.client.get(
        f"/api/v1/jobs/{job_id}/sequences/0/changes?action=delete", headers=api.auth("viewer")
    )
    assert deletes.json()["total"] == 0

    job = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    planned = job.json()["sequences"][0]["planned"]
    assert (planned["delete"], planned["disable"]) == (0, 2)


async def test_an_unknown_action_is_refused_naming_the_ones_there_are(api: ApiHarness) -> None:
    job_id = await a_blocked_directory_job(api)
    answer = await api.client.get(
        f"/api/v1/jobs/{job_id}/sequences/0/changes?action=lock", headers=api.auth("viewer")
    )
    assert answer.status_code == 422
    assert "disable" in answer.text
