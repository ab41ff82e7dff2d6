"""The Revert button in headless Chromium: an admin previews the revert of a completed
sequence (counts, changes, the conflict with its current value), confirms it with the
conflicts included, and the revert job, marked as a revert of its job on its page and in the
list, puts the target back as it was; an operator is offered no Revert and is refused."""

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Page, expect
from pymongo import AsyncMongoClient

from tests.e2e.browser import forced, screenshot, sign_in
from tests.e2e.conftest import System
from tests.e2e.seeding import Seeder, csv_sequence, people

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo]


async def records(system: System, collection: str) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        found = client[system.target_db][collection].find({}).sort("_id", 1)
        return [doc async for doc in found]
    finally:
        await client.close()


@dataclass(frozen=True)
class SequenceToRevert:
    """A completed sequence that deleted, updated and created one record each, and whose
    created record was changed by hand since: its revert has one conflict."""

    definition_id: str
    job_id: str
    collection: str
    before: list[dict[str, Any]]  # the target as it was before the sequence


@pytest.fixture
async def to_revert(seeder: Seeder, system: System) -> SequenceToRevert:
    tag = secrets.token_hex(3)
    collection = f"revert_{tag}"
    path = seeder.write_csv(f"revert/{tag}.csv", people("r", 3))
    sequence = csv_sequence("staff", path, collection, {"create": {"count": 50}})
    sequence["delete_missing"] = True
    sequence["thresholds"]["delete"] = {"count": 50}
    definition_id = await seeder.definition(f"Staff {tag}", [sequence])
    await seeder.wait_status(await seeder.submit(definition_id), "COMPLETED")
    before = await records(system, collection)
    # The sequence to revert: r000 leaves, r001's mail changes, r003 arrives.
    changed = people("r", 4)[1:]
    changed[0]["mail"] = "r001@new.example.org"
    seeder.write_csv(path, changed)
    applied = await seeder.submit(definition_id)
    await seeder.wait_status(applied, "COMPLETED")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        # Someone changes r003 by hand since: a conflict.
        await client[system.target_db][collection].update_one(
            {"_id": "r003"}, {"$set": {"sn": "By hand"}}
        )
    finally:
        await client.close()
    return SequenceToRevert(definition_id, applied, collection, before)


async def test_an_admin_previews_and_confirms_a_revert_from_the_console(
    page: Page, seeder: Seeder, system: System, to_revert: SequenceToRevert
) -> None:
    applied, collection, before = to_revert.job_id, to_revert.collection, to_revert.before
    definition_id = to_revert.definition_id
    operator = await seeder.api_key("operator")
    await sign_in(page, operator)
    await page.goto(f"{system.api_url}/#/jobs/{applied}")
    await expect(page.get_by_test_id("sequence-row")).to_have_count(1)
    await expect(page.get_by_test_id("sequence-status")).to_have_attribute(
        "data-status", "COMPLETED"
    )
    await expect(page.get_by_test_id("btn-revert")).to_have_count(0)
    assert await forced(page, "POST", f"/api/v1/jobs/{applied}/sequences/0/revert", {}) == 403
    await page.get_by_test_id("sign-out").click()

    await sign_in(page, system.admin_key)
    await page.goto(f"{system.api_url}/#/jobs/{applied}")
    await page.get_by_test_id("btn-revert").click()
    panel = page.get_by_test_id("revert-panel")
    await expect(panel).to_be_visible()
    await expect(page.get_by_test_id("revert-of")).to_contain_text(
        f"Revert preview of job {applied[:8]}"
    )
    await expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=30_000
    )
    await expect(panel.get_by_test_id("revert-create")).to_have_text("1")
    await expect(panel.get_by_test_id("revert-update")).to_have_text("1")
    await expect(panel.get_by_test_id("revert-delete")).to_have_text("0")
    await expect(panel.get_by_test_id("revert-conflicts")).to_have_text("1")
    conflict = panel.get_by_test_id("conflict-row")
    await expect(conflict).to_have_count(1)
    await expect(conflict).to_have_attribute("data-key", "r003")
    await expect(conflict.get_by_test_id("conflict-current")).to_contain_text("By hand")
    rows = page.get_by_test_id("change-row")
    await expect(rows).to_have_count(2)
    await screenshot(page, "revert-preview.png")
    assert await records(system, collection) != before  # the preview wrote nothing

    await panel.get_by_test_id("revert-include-conflicts").check()
    await panel.get_by_test_id("btn-confirm-revert").click()
    await expect(page.get_by_test_id("revert-confirm-conflicts")).to_contain_text("forced back")
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("revert-of")).to_contain_text(
        f"Revert of job {applied[:8]}, sequence 1 (conflicts included)"
    )
    await expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=30_000
    )
    await expect(page.get_by_test_id("revert-panel")).to_have_count(0)
    assert await records(system, collection) == before

    await page.goto(f"{system.api_url}/#/jobs?definition_id={definition_id}")
    marks = page.get_by_test_id("revert-of")
    await expect(marks).to_have_count(2)  # the preview and the revert; not the others
    await screenshot(page, "revert-jobs-list.png")
