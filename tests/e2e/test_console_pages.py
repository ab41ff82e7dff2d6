"""The console's operator pages in headless Chromium: definitions, Run now, audit, API keys,
the blocked sequence in the jobs list, and a job page that follows server-sent events.

Each page is used as each role (viewer, operator, admin): what the role may do is offered,
what it may not is absent, and the server refuses it (403) when the page is bypassed.
"""

import json
import re
import secrets

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, expect

from tests.e2e.browser import console_page, forced, screenshot, sign_in
from tests.e2e.seeding import Seeder, csv_sequence, people

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo]


async def two_sequence_definition(seeder: Seeder, tag: str) -> str:
    path = seeder.write_csv(f"pages/{tag}/staff.csv", people("s", 3))
    staff = csv_sequence("staff", path, f"staff_{tag}", {"create": {"count": 50}})
    badges = {
        "name": "badges",
        "source": {"type": "inline"},
        "target": {"type": "mongo", "collection": f"badges_{tag}"},
        "key": "uid",
        "delete_missing": True,
        "thresholds": {"delete": {"percent": 10}, "create": {"count": 100}},
    }
    return await seeder.definition(f"Staff {tag}", [staff, badges])


# ---- definitions ------------------------------------------------------------------------------


async def test_a_viewer_reads_definitions_and_changes_nothing(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    definition_id = await two_sequence_definition(seeder, tag)
    await sign_in(page, console_keys["viewer"])
    # Pages the role cannot use are not offered.
    await expect(page.get_by_test_id("nav-definitions")).to_be_visible()
    await expect(page.get_by_test_id("nav-audit")).to_be_hidden()
    await expect(page.get_by_test_id("nav-api-keys")).to_be_hidden()

    await page.get_by_test_id("nav-definitions").click()
    row = page.locator(f'[data-testid="definition-row"][data-definition-id="{definition_id}"]')
    await expect(row).to_contain_text(f"Staff {tag}")
    await expect(row).to_contain_text(f"mongo staff_{tag}")
    await expect(row).to_contain_text("delete ≥ 10%")
    await expect(page.get_by_test_id("btn-new-definition")).to_have_count(0)
    await screenshot(page, "definitions-list.png")

    await row.get_by_role("link", name=f"Staff {tag}").click()
    await expect(page.get_by_test_id("definition-id")).to_have_text(definition_id)
    cards = page.get_by_test_id("sequence-card")
    await expect(cards).to_have_count(2)
    staff = cards.nth(0)
    await expect(staff.get_by_test_id("sequence-source")).to_have_text(f"csv pages/{tag}/staff.csv")
    await expect(staff.get_by_test_id("sequence-target")).to_have_text(f"mongo staff_{tag}")
    await expect(staff.get_by_test_id("sequence-key")).to_have_text("uid")
    await expect(staff.get_by_test_id("sequence-thresholds")).to_have_text("create ≥ 50")
    await expect(staff.get_by_test_id("sequence-mapping")).to_contain_text("mail← mail")
    badges = cards.nth(1)
    await expect(badges.get_by_test_id("sequence-source")).to_contain_text("inline")
    await expect(badges.get_by_test_id("sequence-thresholds")).to_have_text(
        "create ≥ 100 · delete ≥ 10%"
    )
    await expect(badges.get_by_test_id("sequence-delete-missing")).to_contain_text("yes")
    for button in ("btn-run-now", "btn-edit-definition"):
        await expect(page.get_by_test_id(button)).to_have_count(0)

    # The server refuses the viewer's session what the page does not offer.
    submit = {"request_id": f"v-{tag}", "definition_id": definition_id, "inputs": {}}
    assert await forced(page, "POST", "/api/v1/jobs", submit) == 403
    definition = (await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")).json()
    del definition["version"]
    assert await forced(page, "POST", "/api/v1/job-definitions", definition) == 403
    path = f"/api/v1/job-definitions/{definition_id}"
    assert await forced(page, "PUT", path, definition) == 403


async def test_an_admin_creates_a_definition_with_each_error_at_its_field(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    definition_id = f"people-{tag}"
    await sign_in(page, console_keys["admin"])
    await page.get_by_test_id("nav-definitions").click()
    await page.get_by_test_id("btn-new-definition").click()
    form = page.get_by_test_id("definition-form")
    await form.get_by_label("Id").fill(definition_id)
    await form.get_by_test_id("definition-name-input").fill(f"People {tag}")
    seq = form.get_by_test_id("sequence-fieldset").first
    await seq.get_by_test_id("seq-name").fill("people")
    await seq.get_by_test_id("seq-source-path").fill("../etc/passwd")
    await seq.get_by_test_id("seq-target-collection").fill("not a collection")
    await seq.get_by_test_id("seq-key").fill("uid")
    await seq.get_by_test_id("seq-create-count").fill("many")
    await seq.get_by_test_id("seq-delete-percent").fill("150")
    await page.get_by_test_id("definition-save").click()

    # Each of the API's 422 errors is shown at the field it names.
    errors = page.get_by_test_id("field-error")
    await expect(page.get_by_test_id("definition-form-error")).to_contain_text("4 problems")
    await expect(errors).to_have_count(4)
    by_field = {
        "sequences.0.source.path": "relative path inside the data folder",
        "sequences.0.target.collection": "should match pattern",
        "sequences.0.thresholds.create.count": "valid integer",
        "sequences.0.thresholds.delete.percent": "less than or equal to 100",
    }
    for loc, said in by_field.items():
        error = page.locator(f'[data-testid="field-error"][data-loc="{loc}"]')
        await expect(error).to_contain_text(said, ignore_case=True)
        control = page.locator(f'[data-loc="{loc}"]:is(input, select, textarea)')
        await expect(control).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "definition-form-errors.png")

    # A rule across fields is shown at the field it names ("key: ... mapping").
    await seq.get_by_test_id("seq-source-path").fill(f"pages/{tag}/people.csv")
    await seq.get_by_test_id("seq-target-collection").fill(f"people_{tag}")
    await seq.get_by_test_id("seq-create-count").fill("5")
    await seq.get_by_test_id("seq-delete-percent").fill("")
    await seq.get_by_test_id("seq-mapping").fill("mail = mail")
    await page.get_by_test_id("definition-save").click()
    key_error = page.locator('[data-testid="field-error"][data-loc="sequences.0.key"]')
    await expect(key_error).to_contain_text("must be a target attribute of the mapping")
    await expect(errors).to_have_count(1)

    await seq.get_by_test_id("seq-mapping").fill("uid = uid\nmail = mail")
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("definition-id")).to_have_text(definition_id)
    await expect(page.get_by_test_id("sequence-thresholds")).to_have_text("create ≥ 5")
    stored = (await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")).json()
    assert stored["sequences"][0]["mapping"] == {"uid": "uid", "mail": "mail"}
    assert stored["version"] == 1

    # Edit: a new version; the form starts from the stored definition.
    await page.get_by_test_id("btn-edit-definition").click()
    await expect(form.get_by_label("Id")).to_be_disabled()
    await expect(seq.get_by_test_id("seq-create-count")).to_have_value("5")
    await seq.get_by_test_id("seq-create-count").fill("")
    await page.get_by_test_id("definition-save").click()
    thresholds_error = page.locator(
        '[data-testid="field-error"][data-loc="sequences.0.thresholds"]'
    )
    await expect(thresholds_error).to_contain_text("at least one threshold")
    await seq.get_by_test_id("seq-update-count").fill("7")
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("sequence-thresholds")).to_have_text("update ≥ 7")
    await expect(page.get_by_test_id("definition-id")).to_have_text(definition_id)
    stored = (await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")).json()
    assert stored["version"] == 2
    assert stored["sequences"][0]["thresholds"]["update"] == {"count": 7, "percent": None}
    assert stored["sequences"][0]["thresholds"]["create"] is None


async def test_an_operator_may_not_change_definitions(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    definition_id = await two_sequence_definition(seeder, secrets.token_hex(3))
    await sign_in(page, console_keys["operator"])
    await page.get_by_test_id("nav-definitions").click()
    await expect(page.get_by_test_id("definitions-table")).to_be_visible()
    await expect(page.get_by_test_id("btn-new-definition")).to_have_count(0)
    await page.goto(f"/#/definitions/{definition_id}")
    await expect(page.get_by_test_id("btn-run-now")).to_be_visible()
    await expect(page.get_by_test_id("btn-edit-definition")).to_have_count(0)
    await page.goto(f"/#/definitions/{definition_id}/edit")
    await expect(page.get_by_test_id("not-allowed")).to_be_visible()
    definition = (await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")).json()
    del definition["version"]
    path = f"/api/v1/job-definitions/{definition_id}"
    assert await forced(page, "PUT", path, definition) == 403


async def test_run_now_starts_a_job_and_shows_it(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    definition_id = await two_sequence_definition(seeder, tag)
    await sign_in(page, console_keys["operator"])
    await page.goto(f"/#/definitions/{definition_id}")
    await page.get_by_test_id("btn-run-now").click()
    dialog = page.get_by_test_id("run-dialog")
    request_id = dialog.get_by_label("Request id")
    # A request id is generated; an operator may give their own (a ticket number).
    await expect(request_id).to_have_value(re.compile(r"^console-[0-9a-f-]{36}$"))
    await request_id.fill(f"CHG-{tag}")
    records = dialog.get_by_label("Records for badges (a JSON list)")
    await records.fill("[{not json")
    await dialog.get_by_test_id("run-submit").click()
    await expect(dialog.get_by_test_id("run-input-error")).to_contain_text("Not valid JSON")
    await records.fill(json.dumps([{"uid": "b1", "mail": "b1@example.org"}]))
    await expect(dialog.get_by_test_id("run-input-error")).to_be_hidden()
    await screenshot(page, "definition-run-now.png")
    await dialog.get_by_test_id("run-submit").click()

    await expect(page).to_have_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[-1]
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)
    # Followed live, without a reload, until it is completed.
    await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=90_000)
    job = await seeder.job(job_id)
    assert job["request_id"] == f"CHG-{tag}"
    assert job["requested_by"].startswith("console-operator-")

    # The same request id again is the same job, never a second one.
    await page.goto(f"/#/definitions/{definition_id}")
    await page.get_by_test_id("btn-run-now").click()
    await dialog.get_by_label("Request id").fill(f"CHG-{tag}")
    await dialog.get_by_label("Records for badges (a JSON list)").fill("[]")
    await dialog.get_by_test_id("run-submit").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)

    await page.goto(f"/#/definitions/{definition_id}")
    recent = page.get_by_test_id("recent-job-row")
    await expect(recent).to_have_count(1)
    await expect(recent).to_have_attribute("data-job-id", job_id)
    await expect(recent.get_by_test_id("job-status")).to_have_text("Completed")
    await screenshot(page, "definition-detail.png")


# ---- audit ------------------------------------------------------------------------------------


async def test_audit_filtered_by_job_actor_action_and_date(
    page: Page, browser: Browser, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    path = seeder.write_csv(f"pages/{tag}/few.csv", people("a", 2))
    definition_id = await seeder.definition(
        f"Audited {tag}", [csv_sequence("few", path, f"few_{tag}", {"create": {"count": 1}})]
    )
    # Its own operator, so other tests' actions do not show in its filtered trail.
    operator = await seeder.api_key("operator")
    async with httpx.AsyncClient(
        base_url=seeder.system.api_url, headers=seeder.system.auth(operator), timeout=30
    ) as as_operator:
        operator_name = (await as_operator.get("/api/v1/me")).json()["name"]
        job_ids = []
        for n in range(12):
            body = {"request_id": f"audit-{tag}-{n}", "definition_id": definition_id}
            answer = await as_operator.post("/api/v1/jobs", json={**body, "inputs": {}})
            assert answer.status_code == 202, answer.text
            job_ids.append(answer.json()["id"])

    for role in ("viewer", "operator"):
        async with console_page(browser, seeder.system.api_url) as other:
            await sign_in(other, console_keys[role])
            await expect(other.get_by_test_id("nav-audit")).to_be_hidden()
            await other.goto("/#/audit")
            await expect(other.get_by_test_id("audit-error")).to_contain_text("view_audit")
            assert await forced(other, "GET", "/api/v1/audit", None) == 403

    await sign_in(page, console_keys["admin"])
    await page.get_by_test_id("nav-audit").click()
    await expect(page.get_by_test_id("audit-row").first).to_be_visible()
    await page.get_by_label("Actor").fill(operator_name)
    await page.get_by_label("Action").fill("submit")
    await page.get_by_test_id("audit-apply").click()
    await expect(page).to_have_url(re.compile(f"actor={operator_name}"))
    rows = page.get_by_test_id("audit-row")
    await expect(rows).to_have_count(12)
    await expect(page.get_by_test_id("page-range")).to_have_text("Showing 1\u201312 of 12 entries")
    await screenshot(page, "audit.png")
    # Paged like the jobs.
    await page.get_by_label("Per page").select_option("10")
    await expect(rows).to_have_count(10)
    await page.get_by_test_id("next-page").click()
    await expect(rows).to_have_count(2)
    await expect(page.get_by_test_id("page-info")).to_have_text("Page 2 of 2")

    await page.get_by_label("Job", exact=True).fill(job_ids[3])
    await page.get_by_test_id("audit-apply").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(job_ids[3][:8])

    await page.get_by_label("Job", exact=True).fill("")
    await page.get_by_label("From", exact=True).fill("2001-01-01")
    await page.get_by_label("To", exact=True).fill("2001-01-31")
    await page.get_by_test_id("audit-apply").click()
    await expect(page.get_by_test_id("audit-empty")).to_be_visible()
    await page.get_by_test_id("audit-clear").click()
    # The filters are cleared; the page size stays.
    await expect(page).to_have_url(re.compile(r"#/audit\?page_size=10$"))
    await expect(rows.first).to_be_visible()


# ---- API keys ---------------------------------------------------------------------------------


async def test_an_admin_creates_lists_and_revokes_api_keys(
    page: Page, browser: Browser, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    async with console_page(browser, seeder.system.api_url) as other:
        await sign_in(other, console_keys["operator"])
        await expect(other.get_by_test_id("nav-api-keys")).to_be_hidden()
        await other.goto("/#/api-keys")
        await expect(other.get_by_test_id("api-keys-error")).to_contain_text("manage_api_keys")
        assert await forced(other, "GET", "/api/v1/api-keys", None) == 403
        body = {"name": f"sneaky-{tag}", "role": "admin"}
        assert await forced(other, "POST", "/api/v1/api-keys", body) == 403

    await sign_in(page, console_keys["admin"])
    await page.get_by_test_id("nav-api-keys").click()
    await page.get_by_label("Name").fill(f"ops-{tag}")
    await page.get_by_label("Role").select_option("operator")
    await page.get_by_test_id("btn-create-key").click()
    shown = page.get_by_test_id("created-key-value")
    await expect(shown).to_be_visible()
    key = await shown.inner_text()
    row = page.locator(f'[data-testid="api-key-row"][data-name="ops-{tag}"]')
    await expect(row).to_have_attribute("data-role", "operator")
    await screenshot(page, "api-keys.png")
    me = await seeder.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["role"] == "operator"

    # The same name twice: the server's refusal is shown, and nothing is created.
    await page.get_by_label("Name").fill(f"ops-{tag}")
    await page.get_by_test_id("btn-create-key").click()
    await expect(page.get_by_test_id("api-key-error")).to_contain_text("already exists")

    # Shown once: a reload forgets it; only its name is listed.
    await page.reload()
    await expect(row).to_be_visible()
    await expect(page.get_by_test_id("created-key-value")).to_have_count(0)
    assert key not in await page.content()

    await row.get_by_test_id("btn-revoke").click()
    dialog = page.get_by_test_id("confirm-dialog")
    await dialog.get_by_test_id("confirm-yes").click()
    await expect(row).to_have_count(0)
    me = await seeder.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 401


# ---- the jobs list and the live job page ------------------------------------------------------


async def test_the_jobs_list_shows_where_a_job_stopped(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    first = seeder.write_csv(f"pages/{tag}/first.csv", people("f", 2))
    second = seeder.write_csv(f"pages/{tag}/second.csv", people("g", 6))
    definition_id = await seeder.definition(
        f"Two steps {tag}",
        [
            csv_sequence("accounts", first, f"acc_{tag}", {"create": {"count": 10}}),
            csv_sequence("groups", second, f"grp_{tag}", {"create": {"count": 5}}),
        ],
    )
    lists: list[str] = []

    def count_lists(request: Request) -> None:
        if "/api/v1/jobs?" in request.url:
            lists.append(request.url)

    page.on("request", count_lists)
    await sign_in(page, console_keys["viewer"])
    await page.goto(f"/#/jobs?definition_id={definition_id}")
    await expect(page.get_by_test_id("jobs-empty")).to_be_visible()
    # Requested after the page is open: it appears, runs and stops there without a reload.
    job_id = await seeder.submit(definition_id)
    row = page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')
    await expect(row.get_by_test_id("job-status")).to_have_text("Threshold", timeout=90_000)
    await expect(row.get_by_test_id("job-blocked-sequence")).to_have_text("groups")
    await expect(row.get_by_test_id("job-blocked-action")).to_have_text("create")
    await expect(row.get_by_test_id("job-blocked")).to_contain_text("create 6 (limit 5)")
    # Pushed by the list's event stream: the page itself read the list once.
    filtered = [u for u in lists if f"definition_id={definition_id}" in u]
    assert len(filtered) == 1, lists
    await screenshot(page, "jobs-threshold-list.png")


async def test_the_job_page_follows_server_sent_events_without_polling(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    path = seeder.write_csv(f"pages/{tag}/live.csv", people("l", 3000))
    definition_id = await seeder.definition(
        f"Live {tag}", [csv_sequence("live", path, f"live_{tag}", {"delete": {"count": 1}})]
    )
    reads: list[str] = []

    def count_reads(request: Request) -> None:
        if "/api/v1/jobs/" in request.url:
            reads.append(request.url)

    page.on("request", count_reads)
    await sign_in(page, console_keys["viewer"])
    job_id = await seeder.submit(definition_id)
    await page.goto(f"/#/jobs/{job_id}")
    await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=120_000)
    await expect(page.get_by_test_id("sequence-row")).to_contain_text("3,000")
    # One read of the job, then one event stream (no polling): every change came pushed.
    job_reads = [u for u in reads if u.endswith(f"/api/v1/jobs/{job_id}")]
    streams = [u for u in reads if u.endswith(f"/api/v1/jobs/{job_id}/events")]
    assert len(job_reads) == 1, reads
    assert len(streams) >= 1, reads


async def test_the_event_stream_is_authorized_like_the_rest(
    seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    path = seeder.write_csv(f"pages/{tag}/sse.csv", people("e", 2))
    definition_id = await seeder.definition(
        f"Stream {tag}", [csv_sequence("sse", path, f"sse_{tag}", {"delete": {"count": 1}})]
    )
    job_id = await seeder.submit(definition_id)
    url = f"/api/v1/jobs/{job_id}/events"
    async with httpx.AsyncClient(base_url=seeder.system.api_url, timeout=30) as client:
        assert (await client.get(url)).status_code == 401
        bad = await client.get(url, headers={"Authorization": "Bearer pj_nobody"})
        assert bad.status_code == 401
        missing = f"/api/v1/jobs/{'0' * 8}-0000-4000-8000-{'0' * 12}/events"
        assert (await client.get(missing, headers=seeder.system.auth())).status_code == 404
        viewer = seeder.system.auth(console_keys["viewer"])
        statuses: list[str] = []
        async with client.stream("GET", url, headers=viewer) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "job":
                    job = json.loads(line.removeprefix("data: "))
                    assert job["id"] == job_id
                    # As GET /jobs/{id} answers it: what this viewer may do, i.e. nothing.
                    assert job["allowed_actions"] == []
                    if not statuses or statuses[-1] != job["status"]:
                        statuses.append(job["status"])
                    if job["status"] == "COMPLETED":
                        break
    assert statuses[-1] == "COMPLETED"
