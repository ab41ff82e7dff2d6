"""The Jobs console in headless Chromium against the whole running system, seeded by the API."""

import re
import secrets

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.browser import filter_by_definition, row_of, screenshot, sign_in
from tests.e2e.conftest import System
from tests.e2e.seeding import Seeder, csv_sequence, people

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo]

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# The console's button for each action of a job's allowed_actions.
ACTION_BUTTONS = {
    "validate": "btn-validate",
    "cancel": "btn-cancel",
    "restart": "btn-restart",
    "archive": "btn-archive",
    "unarchive": "btn-unarchive",
    "delete": "btn-delete",
}


# ---- helpers ---------------------------------------------------------------------------------


def rows(page: Page) -> Locator:
    return page.get_by_test_id("job-row")


async def open_job(page: Page, definition_id: str, job_id: str) -> None:
    await filter_by_definition(page, definition_id)
    await row_of(page, job_id).get_by_test_id("btn-view").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)


async def confirm(page: Page) -> None:
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("confirm-yes").click()
    await expect(dialog).to_be_hidden()


# ---- tests -------------------------------------------------------------------------------------


async def test_sign_in_with_an_api_key_and_sign_out(page: Page, system: System) -> None:
    await page.goto("/")
    await expect(page.get_by_test_id("sign-in-page")).to_be_visible()
    await expect(page.get_by_test_id("main-nav")).to_be_hidden()

    await page.get_by_label("API key").fill("not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("sign-in-error")).to_contain_text("not valid")
    await expect(page.get_by_test_id("jobs-table")).to_have_count(0)

    await page.get_by_label("API key").fill(system.admin_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()
    await expect(page.get_by_test_id("session-role")).to_have_text("admin")
    await expect(page.get_by_test_id("nav-jobs")).to_have_attribute("aria-current", "page")

    # The key itself is never kept by the page: only the HttpOnly session cookie is.
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["pj_session"]["httpOnly"] is True
    assert cookies["pj_session"]["sameSite"] == "Strict"
    assert system.admin_key not in str(cookies)
    assert await page.evaluate("document.cookie.includes('pj_session')") is False

    await page.reload()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()

    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("sign-in-page")).to_be_visible()
    await page.reload()
    await expect(page.get_by_test_id("sign-in-page")).to_be_visible()
    answer = await page.request.get("/api/v1/me")
    assert answer.status == 401


async def test_console_is_served_by_job_api_with_a_strict_policy(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.api_url) as client:
        shell = await client.get("/")
        script = await client.get("/console/static/app.js")
        escape = await client.get("/console/static/..%2Fsettings.py")
        missing = await client.get("/console/static/nothing.js")
    assert shell.status_code == 200
    assert shell.headers["content-type"].startswith("text/html")
    assert shell.headers["cache-control"] == "no-store"
    policy = shell.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "http" not in policy  # no external origin anywhere
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert escape.status_code == 404
    assert missing.status_code == 404
    async with httpx.AsyncClient(base_url=system.api_url) as client:
        again = await client.get(
            "/console/static/app.js", headers={"If-None-Match": script.headers["etag"]}
        )
    assert again.status_code == 304


async def test_page_through_25_jobs(page: Page, seeder: Seeder) -> None:
    tag = secrets.token_hex(3)
    definition_id = await seeder.definition(
        "HR import",
        [
            {
                "name": "employees",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": f"employees_{tag}"},
                "key": "uid",
                "thresholds": {"create": {"count": 5}},
            }
        ],
    )
    # Submitted one by one so the newest (first page) are the four that stop at the threshold.
    job_ids = [
        await seeder.submit(definition_id, {"employees": people(f"e{n:02d}-", 2)})
        for n in range(21)
    ]
    blocked = [
        await seeder.submit(definition_id, {"employees": people(f"b{n:02d}-", 6)}) for n in range(4)
    ]
    for job_id in job_ids:
        await seeder.wait_status(job_id, "COMPLETED")
    for job_id in blocked:
        await seeder.wait_status(job_id, "THRESHOLD")
    await seeder.decide(blocked[0], "threshold/validate", until="VALIDATED")
    await seeder.decide(blocked[1], "threshold/cancel", until="CANCELED")

    await sign_in(page, seeder.system.admin_key)
    # Preloaded: the page shows the existing instances without any search.
    await expect(rows(page).first).to_be_visible()
    await filter_by_definition(page, definition_id)

    info = page.get_by_test_id("page-info")
    await expect(info).to_have_text("Page 1 of 3")
    await expect(rows(page)).to_have_count(10)
    await expect(page.get_by_test_id("jobs-total")).to_contain_text("25 job instances")
    await expect(page.get_by_test_id("page-range")).to_have_text("Showing 1\u201310 of 25")
    await expect(page.get_by_test_id("prev-page")).to_be_disabled()
    await expect(page.get_by_test_id("first-page")).to_be_disabled()
    # Newest first, so the blocked jobs lead.
    await expect(rows(page).first).to_have_attribute("data-job-id", blocked[3])

    created = rows(page).first.locator("td").nth(3).locator("time")
    assert ISO_UTC.match(await created.get_attribute("title") or "")
    assert "T" not in await created.inner_text()  # shown readably, in the browser's zone

    await screenshot(page, "jobs-list.png")

    seen: set[str] = set()
    for expected_page, expected_rows in ((1, 10), (2, 10), (3, 5)):
        await expect(info).to_have_text(f"Page {expected_page} of 3")
        await expect(rows(page)).to_have_count(expected_rows)
        seen.update([await r.get_attribute("data-job-id") or "" for r in await rows(page).all()])
        if expected_page < 3:
            await page.get_by_test_id("next-page").click()
    assert seen == set(job_ids) | set(blocked)
    await expect(page.get_by_test_id("next-page")).to_be_disabled()
    await expect(page.get_by_test_id("last-page")).to_be_disabled()

    await page.get_by_test_id("first-page").click()
    await expect(info).to_have_text("Page 1 of 3")
    await page.get_by_test_id("last-page").click()
    await expect(info).to_have_text("Page 3 of 3")
    await page.get_by_test_id("prev-page").click()
    await expect(info).to_have_text("Page 2 of 3")

    await page.get_by_label("Per page").select_option("25")
    await expect(info).to_have_text("Page 1 of 1")
    await expect(rows(page)).to_have_count(25)
    await page.get_by_label("Per page").select_option("10")
    await expect(rows(page)).to_have_count(10)

    await page.get_by_label("Status").select_option("THRESHOLD")
    await expect(rows(page)).to_have_count(2)
    for status_cell in await rows(page).get_by_test_id("job-status").all():
        await expect(status_cell).to_have_text("Threshold")
    await expect(info).to_have_text("Page 1 of 1")

    # The address holds the view: a reload shows the same page of the same filter.
    await page.reload()
    await expect(rows(page)).to_have_count(2)
    await expect(page.get_by_label("Status")).to_have_value("THRESHOLD")


async def test_archive_and_delete_jobs(page: Page, seeder: Seeder) -> None:
    tag = secrets.token_hex(3)
    path = seeder.write_csv(f"console/{tag}/staff.csv", people("s", 3))
    definition_id = await seeder.definition(
        "Staff sync",
        [csv_sequence("staff", path, f"staff_{tag}", {"delete": {"count": 10}})],
    )
    kept, archived, deleted, gone = [await seeder.submit(definition_id) for _ in range(4)]
    for job_id in (kept, archived, deleted, gone):
        await seeder.wait_status(job_id, "COMPLETED")

    await sign_in(page, seeder.system.admin_key)
    await filter_by_definition(page, definition_id)
    await expect(rows(page)).to_have_count(4)

    await row_of(page, archived).get_by_test_id("btn-archive").click()
    await expect(page.get_by_test_id("flash-notice")).to_contain_text("archived")
    await expect(rows(page)).to_have_count(3)
    await expect(row_of(page, archived)).to_have_count(0)
    assert (await seeder.job(archived))["archived"] is True

    await page.get_by_label("Show archived").check()
    await expect(rows(page)).to_have_count(4)
    archived_row = row_of(page, archived)
    await expect(archived_row.get_by_test_id("archived-tag")).to_be_visible()
    await expect(archived_row.get_by_test_id("btn-unarchive")).to_be_visible()
    await expect(archived_row.get_by_test_id("btn-archive")).to_have_count(0)
    await page.get_by_label("Show archived").uncheck()
    await expect(rows(page)).to_have_count(3)

    # Delete asks first; keeping it changes nothing.
    await row_of(page, deleted).get_by_test_id("btn-delete").click()
    dialog = page.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(deleted)
    await dialog.get_by_test_id("confirm-no").click()
    await expect(dialog).to_be_hidden()
    await expect(rows(page)).to_have_count(3)

    await row_of(page, deleted).get_by_test_id("btn-delete").click()
    await confirm(page)
    await expect(row_of(page, deleted)).to_have_count(0)
    await expect(rows(page)).to_have_count(2)
    assert (await seeder.client.get(f"/api/v1/jobs/{deleted}")).status_code == 404

    # Deleted behind the console's back: the server refuses and the console says why.
    assert (await seeder.client.delete(f"/api/v1/jobs/{gone}")).status_code == 204
    await row_of(page, gone).get_by_test_id("btn-delete").click()
    await confirm(page)
    await expect(page.get_by_test_id("flash-error")).to_contain_text("no job instance")
    await expect(rows(page)).to_have_count(1)
    await expect(row_of(page, kept)).to_have_count(1)


async def test_validate_and_restart_a_job_at_threshold(page: Page, seeder: Seeder) -> None:
    tag = secrets.token_hex(3)
    operator_key = await seeder.api_key("operator")
    people_path = seeder.write_csv(f"console/{tag}/people.csv", people("p", 3))
    accounts_path = seeder.write_csv(f"console/{tag}/accounts.csv", people("a", 12))
    definition_id = await seeder.definition(
        "Directory import",
        [
            csv_sequence("people", people_path, f"people_{tag}", {"create": {"count": 100}}),
            csv_sequence("accounts", accounts_path, f"accounts_{tag}", {"create": {"count": 10}}),
        ],
    )
    job_id = await seeder.submit(definition_id)
    await seeder.wait_status(job_id, "THRESHOLD")

    await sign_in(page, operator_key)
    await expect(page.get_by_test_id("session-role")).to_have_text("operator")
    await filter_by_definition(page, definition_id)
    # An operator decides on thresholds but neither deletes nor archives.
    await expect(row_of(page, job_id).get_by_test_id("btn-view")).to_be_visible()
    await expect(page.get_by_test_id("btn-delete")).to_have_count(0)
    await expect(page.get_by_test_id("btn-archive")).to_have_count(0)
    await open_job(page, definition_id, job_id)

    await expect(page.get_by_test_id("job-status")).to_have_text("Threshold")
    panel = page.get_by_test_id("threshold-panel")
    await expect(panel.get_by_test_id("threshold-sequence")).to_contain_text("accounts")
    await expect(panel.get_by_test_id("threshold-action")).to_have_text("create")
    await expect(panel.get_by_test_id("threshold-limit")).to_have_text("10 creations")
    await expect(panel.get_by_test_id("threshold-planned")).to_have_text("12 creations")
    sequences = page.get_by_test_id("sequence-row")
    await expect(sequences).to_have_count(2)
    await expect(sequences.nth(0).get_by_test_id("sequence-status")).to_have_text("Completed")
    await expect(sequences.nth(1).get_by_test_id("sequence-status")).to_have_text("Threshold")
    # Each sequence says where it writes: the target type and its collection (or base DN).
    await expect(sequences.nth(1).get_by_test_id("sequence-target")).to_contain_text("mongo")

    changes = page.get_by_test_id("changes-table").get_by_test_id("change-row")
    await expect(changes).to_have_count(10)
    await expect(page.get_by_test_id("changes-page-info")).to_have_text("Page 1 of 2")
    await expect(page.get_by_test_id("changes-total")).to_have_text("12 changes")
    await expect(changes.first).to_contain_text("a000@example.org")
    await screenshot(page, "job-threshold.png")
    await page.get_by_test_id("changes-next").click()
    await expect(page.get_by_test_id("changes-page-info")).to_have_text("Page 2 of 2")
    await expect(changes).to_have_count(2)
    await page.get_by_label("Action").select_option("delete")
    await expect(changes).to_have_count(0)
    await expect(page.get_by_test_id("changes-table")).to_contain_text("No planned change")
    await page.get_by_label("Action").select_option("create")
    await expect(changes).to_have_count(10)

    # The buttons are exactly the API's allowed_actions for this operator: at THRESHOLD a
    # restart (planning again, after the source was fixed) is allowed besides the decision.
    offered = (await seeder.job(job_id, operator_key))["allowed_actions"]
    assert offered == ["validate", "cancel", "restart"]
    for action in ACTION_BUTTONS:
        await expect(page.get_by_test_id(ACTION_BUTTONS[action])).to_have_count(
            1 if action in offered else 0
        )
    await page.get_by_test_id("btn-validate").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("12 creations")
    await confirm(page)
    await expect(page.get_by_test_id("job-status")).to_have_text("Validated")
    await expect(panel).to_contain_text("Validated")
    await expect(panel).to_contain_text("approved by console-operator-")
    await expect(page.get_by_test_id("btn-validate")).to_have_count(0)
    await expect(page.get_by_test_id("btn-cancel")).to_be_visible()

    await page.get_by_test_id("btn-restart").click()
    # The detail view follows the job by itself, through RUNNING to the end.
    await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=60_000)
    await expect(sequences.nth(1).get_by_test_id("sequence-status")).to_have_text("Completed")
    await expect(sequences.nth(1)).to_contain_text("12")
    await expect(page.get_by_test_id("threshold-panel")).to_have_count(0)
    await expect(page.get_by_test_id("btn-restart")).to_have_count(0)
    await screenshot(page, "job-detail.png")

    job = await seeder.job(job_id)
    assert job["status"] == "COMPLETED"
    assert job["sequences"][1]["applied"]["create"] == 12


async def test_cancel_a_job_at_threshold(page: Page, seeder: Seeder) -> None:
    tag = secrets.token_hex(3)
    groups_path = seeder.write_csv(f"console/{tag}/groups.csv", people("g", 5))
    members_path = seeder.write_csv(f"console/{tag}/members.csv", people("m", 2))
    definition_id = await seeder.definition(
        "Groups import",
        [
            csv_sequence("groups", groups_path, f"groups_{tag}", {"create": {"count": 3}}),
            csv_sequence("members", members_path, f"members_{tag}", {"create": {"count": 50}}),
        ],
    )
    job_id = await seeder.submit(definition_id)
    await seeder.wait_status(job_id, "THRESHOLD")

    await sign_in(page, seeder.system.admin_key)
    await filter_by_definition(page, definition_id)
    # Waiting for a decision is not finished: neither archive nor delete is offered yet.
    row = row_of(page, job_id)
    await expect(row.get_by_test_id("btn-archive")).to_be_disabled()
    await expect(row.get_by_test_id("btn-delete")).to_be_disabled()
    await open_job(page, definition_id, job_id)

    await expect(page.get_by_test_id("job-status")).to_have_text("Threshold")
    await page.get_by_test_id("btn-cancel").click()
    await expect(page.get_by_test_id("confirm-dialog")).to_contain_text("members")
    await confirm(page)
    await expect(page.get_by_test_id("job-status")).to_have_text("Canceled")
    sequences = page.get_by_test_id("sequence-row")
    await expect(sequences).to_have_count(2)
    for sequence in await sequences.all():
        await expect(sequence.get_by_test_id("sequence-status")).to_have_text("Canceled")
    for button in ("btn-validate", "btn-cancel", "btn-restart"):
        await expect(page.get_by_test_id(button)).to_have_count(0)
    await expect(page.get_by_test_id("threshold-panel")).to_have_count(0)
    # Finished now: an admin may archive or delete it.
    await expect(page.get_by_test_id("btn-archive")).to_be_enabled()
    await expect(page.get_by_test_id("btn-delete")).to_be_enabled()

    job = await seeder.job(job_id)
    assert [s["status"] for s in job["sequences"]] == ["CANCELED", "CANCELED"]
    assert job["sequences"][0]["applied"] is None


async def test_viewer_sees_no_action_buttons(page: Page, seeder: Seeder) -> None:
    tag = secrets.token_hex(3)
    viewer_key = await seeder.api_key("viewer")
    path = seeder.write_csv(f"console/{tag}/badges.csv", people("v", 4))
    definition_id = await seeder.definition(
        "Badges import",
        [csv_sequence("badges", path, f"badges_{tag}", {"create": {"count": 4}})],
    )
    blocked = await seeder.submit(definition_id)
    await seeder.wait_status(blocked, "THRESHOLD")
    finished = await seeder.submit(definition_id)
    await seeder.wait_status(finished, "THRESHOLD")
    await seeder.decide(finished, "threshold/cancel", until="CANCELED")
    assert (await seeder.client.post(f"/api/v1/jobs/{finished}/archive")).status_code == 200

    await sign_in(page, viewer_key)
    await expect(page.get_by_test_id("session-role")).to_have_text("viewer")
    await filter_by_definition(page, definition_id)
    await page.get_by_label("Show archived").check()
    await expect(rows(page)).to_have_count(2)
    await expect(rows(page).get_by_test_id("btn-view")).to_have_count(2)
    actions = ("btn-delete", "btn-archive", "btn-unarchive", "btn-validate", "btn-cancel")
    for button in (*actions, "btn-restart"):
        await expect(page.get_by_test_id(button)).to_have_count(0)

    await open_job(page, definition_id, blocked)
    await expect(page.get_by_test_id("job-status")).to_have_text("Threshold")
    # A viewer sees what is blocked and why, and the planned changes, but decides nothing.
    await expect(page.get_by_test_id("threshold-panel")).to_be_visible()
    await expect(page.get_by_test_id("change-row")).to_have_count(4)
    for button in (*actions, "btn-restart"):
        await expect(page.get_by_test_id(button)).to_have_count(0)

    # The server holds the same line for the viewer's own session.
    refused = await page.evaluate(
        """async (jobId) => {
            const csrf = document.cookie.split('; ').find((c) => c.startsWith('pj_csrf='));
            const r = await fetch(`/api/v1/jobs/${jobId}/threshold/validate`, {
                method: 'POST', headers: {'X-CSRF-Token': csrf.split('=')[1]}});
            return r.status;
        }""",
        blocked,
    )
    assert refused == 403
    assert (await seeder.job(blocked))["status"] == "THRESHOLD"


async def test_detail_view_follows_a_running_job_with_a_progress_bar(
    page: Page, seeder: Seeder
) -> None:
    tag = secrets.token_hex(3)
    # Large enough that applying it spans several progress events and console refreshes.
    path = seeder.write_csv(f"console/{tag}/bulk.csv", people("r", 10_000))
    definition_id = await seeder.definition(
        "Bulk load",
        [csv_sequence("bulk", path, f"bulk_{tag}", {"delete": {"count": 1}})],
    )
    await sign_in(page, seeder.system.admin_key)
    job_id = await seeder.submit(definition_id)
    await page.goto(f"/#/jobs/{job_id}")

    progress = page.get_by_test_id("sequence-progress")
    await expect(progress).to_be_visible()
    await expect(page.get_by_test_id("job-status")).to_have_text("Running")
    await expect(page.get_by_test_id("live")).to_be_visible()
    # The bar shows how far the running phase is, out of the sequence's records. (Its value
    # may already be at the end of a phase when read: planning is fast on a quiet machine.)
    label = await page.locator(".progress-label").first.inner_text()
    assert re.fullmatch(r"(Planning|Applying) [\d,]+( / [\d,]+)?|Starting…", label), label
    await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=120_000)
    await expect(progress).to_have_count(0)
    await expect(page.get_by_test_id("live")).to_have_count(0)
    await expect(page.get_by_test_id("sequence-row")).to_contain_text("10,000")
