"""A directory sequence's blocked plan in headless Chromium: each planned change shows the DN
it is written to, disables are their own action (counts, filter, the validate dialog) and the
delete limit is shown as held against deletions and disables.

The job instance and its plan are put in the read model as the projector and the runner store
them: what is checked here is how the console shows them."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Page, expect
from provisioning_common.events import PlanCounts
from pymongo import AsyncMongoClient
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

from tests.e2e.browser import sign_in
from tests.e2e.conftest import System
from tests.integration.api.harness import job_doc, sequence_doc

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo]

BASE = "ou=people,dc=example,dc=org"


async def a_blocked_directory_job(system: System) -> str:
    job_id = str(uuid.uuid4())
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
    changes: list[dict[str, Any]] = [
        {
            "seq": 0,
            "action": "create",
            "key": "cy",
            "dn": f"uid=cy,{BASE}",
            "before": None,
            "after": {"uid": "cy", "sn": "Oh"},
        },
        *(
            {
                "seq": seq,
                "action": "disable",
                "key": uid,
                "dn": f"uid={uid},ou=east,{BASE}",
                "before": {"uid": uid, "sn": "X"},
                "after": None,
            }
            for seq, uid in ((1, "ann"), (2, "bob"))
        ),
    ]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        db = client[system.mongo_database]
        doc = job_doc(status="THRESHOLD", sequences=[sequence], job_id=job_id)
        await db["job_instances"].insert_one(doc)
        # Stored by the runner's own plan repository, as a directory plan is.
        planned = [PlannedChange(**c) for c in changes]
        counts = PlanCounts(create=1, update=0, delete=0, disable=2, unchanged=5, target_size=7)
        plan = StoredPlan(plan_id, job_id, 0, 1, counts, datetime.now(UTC), plan_digest(planned))
        await MongoPlanRepository(db).save(plan, planned)
    finally:
        await client.close()
    return job_id


async def test_a_directory_plan_shows_dns_and_disables(page: Page, system: System) -> None:
    job_id = await a_blocked_directory_job(system)
    await sign_in(page, system.admin_key)
    await page.goto(f"/#/jobs/{job_id}")
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)

    panel = page.get_by_test_id("threshold-panel")
    await expect(panel.get_by_test_id("threshold-planned")).to_have_text("2 deletions and disables")
    row = page.get_by_test_id("sequence-row").first
    await expect(row.get_by_test_id("count-disable").first).to_contain_text("2")

    changes = page.get_by_test_id("changes-table").get_by_test_id("change-row")
    await expect(changes).to_have_count(3)
    await expect(changes.nth(0).get_by_test_id("change-dn")).to_have_text(f"uid=cy,{BASE}")
    await expect(changes.nth(1).get_by_test_id("change-dn")).to_have_text(f"uid=ann,ou=east,{BASE}")
    await page.get_by_label("Action").select_option("disable")
    await expect(changes).to_have_count(2)
    await expect(changes.nth(0)).to_contain_text("disable")

    await page.get_by_test_id("btn-validate").click()
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog.get_by_test_id("validate-disables")).to_contain_text("2 disables")
