"""The console's view of what runs without an operator's click, in headless Chromium: a dry run
started from Run now, the notifications sent about a job (a real webhook receiver and a real
SMTP server, told by the real job-api-notifier), and a definition's schedule with its firings.

Each is read as a viewer too: everything is shown, nothing can be started or decided.
"""

import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.adapters.schedule_store import ScheduleStore
from job_api.handlers.schedules import Scheduler
from playwright.async_api import Page, expect
from provisioning_common.kafka import build_broker
from provisioning_common.requests import JobRequest
from provisioning_common.topics import JOB_REQUESTS
from pymongo import AsyncMongoClient

from tests.e2e.browser import filter_by_definition, forced, row_of, screenshot, sign_in
from tests.e2e.conftest import System, _group_ready
from tests.e2e.seeding import Seeder, csv_sequence, people
from tests.integration.operations.test_notifier_process import (
    SECRET,
    Mailbox,
    Receiver,
    receiver,
    smtp,
)
from tests.support.processes import REPO, service_argv, start_service
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo]

# The fixtures: the notifier test's webhook receiver (checks each signature, refuses each
# delivery's first try with a 503) and SMTP server.
__all__ = ["receiver", "smtp"]

NO_ACTION_BUTTONS = ("btn-validate", "btn-restart", "btn-cancel")


async def stopping_definition(seeder: Seeder, tag: str, **extra: Any) -> str:
    """One CSV sequence of three people against a limit of two creations: a real run stops at
    its threshold; `extra` adds a schedule or recipients."""
    path = seeder.write_csv(f"ops/{tag}/people.csv", people("p", 3))
    sequence = csv_sequence("people", path, f"people_{tag}", {"create": {"count": 2}})
    definition_id = f"ops-{tag}"
    body = {"id": definition_id, "name": f"Ops {tag}", "sequences": [sequence], **extra}
    answer = await seeder.client.post("/api/v1/job-definitions", json=body)
    assert answer.status_code == 201, answer.text
    return definition_id


# ---- dry run ----------------------------------------------------------------------------------


async def test_a_dry_run_from_run_now_is_marked_everywhere_and_offers_no_decision(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    groups = seeder.write_csv(f"ops/{tag}/groups.csv", people("g", 2))
    definition_id = await stopping_definition(seeder, tag)
    replaced = await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")
    definition = replaced.json()
    definition["sequences"].append(
        csv_sequence("groups", groups, f"groups_{tag}", {"create": {"count": 100}})
    )
    version = definition.pop("version")
    answer = await seeder.client.put(
        f"/api/v1/job-definitions/{definition_id}",
        json=definition,
        params={"expected_version": version},
    )
    assert answer.status_code == 200, answer.text

    await sign_in(page, console_keys["operator"])
    await page.goto(f"/#/definitions/{definition_id}")
    await page.get_by_test_id("btn-run-now").click()
    dialog = page.get_by_test_id("run-dialog")
    await dialog.get_by_label("Dry run").check()
    await expect(dialog.get_by_test_id("run-submit")).to_have_text("Start dry run")
    await dialog.get_by_test_id("run-submit").click()

    await expect(page).to_have_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[-1]
    await expect(page.get_by_test_id("dry-run-tag")).to_have_text("Dry run")
    await expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=90_000)
    job = await seeder.job(job_id)
    assert job["dry_run"] is True
    assert job["requested_by"].startswith("console-operator-")

    # Each plan and its counts, as for a blocked sequence, and the threshold it would reach.
    panel = page.get_by_test_id("dry-run-panel")
    await expect(panel).to_contain_text("nothing is written")
    plans = panel.get_by_test_id("dry-run-sequence")
    await expect(plans).to_have_count(2)
    people_plan = plans.nth(0)
    await expect(people_plan).to_have_attribute("data-stops", "true")
    await expect(people_plan.get_by_test_id("dry-run-threshold")).to_contain_text("create")
    await expect(people_plan.get_by_test_id("dry-run-threshold")).to_contain_text("3 creations")
    await expect(people_plan.get_by_test_id("dry-run-threshold")).to_contain_text("2 creations")
    await expect(plans.nth(1)).to_have_attribute("data-stops", "false")
    await expect(plans.nth(1).get_by_test_id("dry-run-threshold")).to_contain_text("within")
    await expect(page.get_by_test_id("dry-run-stops")).to_contain_text("1 of 2 sequences")
    # The changes of the sequence that would stop are listed at once; the other on request.
    await expect(page.get_by_test_id("changes-sequence")).to_have_text("people")
    await expect(page.get_by_test_id("change-row")).to_have_count(3)
    await plans.nth(1).get_by_test_id("dry-run-changes").click()
    await expect(page.get_by_test_id("changes-sequence")).to_have_text("groups")
    await expect(page.get_by_test_id("change-row")).to_have_count(2)
    for button in NO_ACTION_BUTTONS:
        await expect(page.get_by_test_id(button)).to_have_count(0)
    await page.get_by_test_id("dry-run-changes").first.click()
    await expect(page.get_by_test_id("changes-sequence")).to_have_text("people")
    await screenshot(page, "job-dry-run.png")

    # Nothing was written: neither target collection was even made.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(seeder.system.mongo_uri)
    try:
        written = await client[seeder.system.target_db].list_collection_names()
    finally:
        await client.close()
    assert not {f"people_{tag}", f"groups_{tag}"} & set(written)

    # Marked in the jobs list and among the definition's recent jobs.
    await page.get_by_test_id("nav-jobs").click()
    await filter_by_definition(page, definition_id)
    await expect(row_of(page, job_id).get_by_test_id("dry-run-tag")).to_be_visible()
    await page.goto(f"/#/definitions/{definition_id}")
    recent = page.get_by_test_id("recent-job-row")
    await expect(recent).to_have_attribute("data-job-id", job_id)
    await expect(recent.get_by_test_id("dry-run-tag")).to_be_visible()

    # The dry run's request id again, without Dry run: the same job, and the page says it is a
    # dry run and nothing new started, so nobody takes it for a real run.
    await page.get_by_test_id("btn-run-now").click()
    await dialog.get_by_label("Request id").fill(job["request_id"])
    await dialog.get_by_test_id("run-submit").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)
    await expect(page.get_by_test_id("flash-error")).to_contain_text(
        "which is a dry run: nothing new was started"
    )
    await page.goto(f"/#/definitions/{definition_id}")
    await expect(page.get_by_test_id("recent-job-row")).to_have_count(1)

    # A viewer sees the same marks and plans, and can neither run nor decide.
    await page.get_by_test_id("sign-out").click()
    await sign_in(page, console_keys["viewer"])
    await page.goto(f"/#/jobs/{job_id}")
    await expect(page.get_by_test_id("dry-run-tag")).to_be_visible()
    await expect(page.get_by_test_id("dry-run-sequence")).to_have_count(2)
    for button in (*NO_ACTION_BUTTONS, "btn-archive", "btn-delete"):
        await expect(page.get_by_test_id(button)).to_have_count(0)
    await page.goto(f"/#/definitions/{definition_id}")
    await expect(page.get_by_test_id("recent-job-row")).to_have_count(1)
    await expect(page.get_by_test_id("btn-run-now")).to_have_count(0)
    body = {"request_id": f"v-{tag}", "definition_id": definition_id, "dry_run": True}
    assert await forced(page, "POST", "/api/v1/jobs", body) == 403


# ---- notifications ----------------------------------------------------------------------------


@pytest.fixture
def notifier(system: System, smtp: tuple[Mailbox, int]) -> Iterator[None]:
    """job-api-notifier beside the session's system, with the one webhook secret it knows."""
    kafka = system.kafka_settings
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": system.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": system.mongo_uri,
        "MONGO_DATABASE": system.mongo_database,
        "PROVISIONING_SMTP_HOST": "127.0.0.1",
        "PROVISIONING_SMTP_PORT": str(smtp[1]),
        "PROVISIONING_WEBHOOK_SECRETS": json.dumps({"iam-team": SECRET}),
        "PROVISIONING_NOTIFY_FIRST_DELAY_SECONDS": "0.2",
        "PROVISIONING_CONSOLE_BASE_URL": system.api_url,
    }
    log = REPO / "test-results" / "logs" / f"console-notifier-{secrets.token_hex(3)}.log"
    with start_service(
        "job-api-notifier",
        service_argv("job-api-notifier"),
        env,
        lambda: _group_ready(kafka, "job-api-notifier"),
        log,
        timeout=90,
    ) as process:
        yield
    assert SECRET not in process.log_tail(lines=100_000)


async def test_a_job_page_shows_who_was_told_and_every_attempt(
    page: Page,
    seeder: Seeder,
    console_keys: dict[str, str],
    receiver: tuple[Receiver, str],
    smtp: tuple[Mailbox, int],
    notifier: None,
) -> None:
    hook, url = receiver
    mailbox, _ = smtp
    tag = secrets.token_hex(3)
    definition_id = await stopping_definition(
        seeder,
        tag,
        recipients=[
            {"name": "iam-team", "webhook_url": url, "email": "iam-team@example.org"},
            # No secret is configured for it: nothing is sent, and the page says why.
            {"name": "unsigned", "webhook_url": f"{url}?unsigned"},
        ],
    )
    job_id = await seeder.submit(definition_id)
    await seeder.wait_status(job_id, "THRESHOLD")

    async def all_settled() -> list[dict[str, Any]] | None:
        answer = await seeder.client.get(
            f"/api/v1/jobs/{job_id}/notifications",
            headers={"Authorization": f"Bearer {console_keys['viewer']}"},
        )
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        settled = len(items) == 3 and all(n["status"] != "sending" for n in items)
        return items if settled else None

    await eventually(all_settled, timeout=60, what="the three deliveries settled")
    assert hook.bad_signatures == 0
    assert [b["job_id"] for b in hook.accepted] == [job_id]
    assert len(mailbox.messages) == 1

    await sign_in(page, console_keys["viewer"])
    await page.goto(f"/#/jobs/{job_id}")
    await expect(page.get_by_test_id("job-status")).to_have_text("Threshold")
    section = page.get_by_test_id("notifications")
    rows = section.get_by_test_id("notification-row")
    await expect(rows).to_have_count(3)
    await expect(section.get_by_test_id("notifications-summary")).to_have_text(
        "3 deliveries, 1 failed"
    )

    webhook = section.locator(
        '[data-testid="notification-row"][data-recipient="iam-team"][data-channel="webhook"]'
    )
    await expect(webhook).to_contain_text("Stopped at a threshold")
    await expect(webhook.get_by_test_id("notification-address")).to_have_text(url)
    await expect(webhook.get_by_test_id("notification-status")).to_have_text("Delivered")
    attempts = webhook.get_by_test_id("notification-attempt")
    await expect(attempts).to_have_count(2)
    await expect(attempts.nth(0)).to_have_attribute("data-ok", "false")
    await expect(attempts.nth(0)).to_contain_text("503")
    await expect(attempts.nth(1)).to_have_attribute("data-ok", "true")

    email = section.locator('[data-testid="notification-row"][data-channel="email"]')
    await expect(email.get_by_test_id("notification-recipient")).to_have_text("iam-team")
    await expect(email.get_by_test_id("notification-address")).to_have_text("iam-team@example.org")
    await expect(email.get_by_test_id("notification-status")).to_have_text("Delivered")
    await expect(email.get_by_test_id("notification-attempt")).to_have_count(1)

    unsigned = section.locator('[data-testid="notification-row"][data-recipient="unsigned"]')
    await expect(unsigned.get_by_test_id("notification-status")).to_have_text("Failed")
    await expect(unsigned.get_by_test_id("notification-attempt")).to_have_attribute(
        "data-ok", "false"
    )
    await expect(unsigned.get_by_test_id("attempt-detail")).to_contain_text("no webhook secret")

    # The secret is nowhere on the page, and the viewer has nothing to decide.
    assert SECRET not in await page.content()
    for button in NO_ACTION_BUTTONS:
        await expect(page.get_by_test_id(button)).to_have_count(0)
    await section.scroll_into_view_if_needed()
    await screenshot(page, "job-notifications.png")

    # The definition says who is told, by which channel and on which stops.
    await page.goto(f"/#/definitions/{definition_id}")
    told = page.get_by_test_id("definition-recipient")
    await expect(told).to_have_count(2)
    await expect(told.nth(0)).to_have_text(f"iam-team: webhook {url}, email iam-team@example.org")
    await expect(told.nth(1)).to_have_text(f"unsigned: webhook {url}?unsigned")
    await expect(page.get_by_test_id("definition-recipients")).to_contain_text(
        "on a threshold, a failure"
    )
    await expect(page.get_by_test_id("definition-retention")).to_have_text("the system default")
    assert SECRET not in await page.content()


# ---- schedules --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def scheduler(system: System) -> AsyncIterator[tuple[Scheduler, Clock]]:
    """The scheduler's own code on the session's database and broker, on a clock the test
    moves: two firings half an hour apart take no hour (the process is tested on time in
    tests/integration/operations/test_schedules.py)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri, tz_aware=True)
    broker = build_broker(system.kafka_settings)
    await broker.start()
    topic = system.topic(JOB_REQUESTS)

    async def request_job(request: JobRequest) -> None:
        await broker.publish(
            request.model_dump_json().encode(), topic=topic, key=request.request_id.encode()
        )

    now = datetime.now(UTC)
    # Two hours ago, on a half hour: the firings shown are in the past, as they would be.
    start = now.replace(minute=now.minute // 30 * 30, second=0, microsecond=0)
    clock = Clock(start - timedelta(hours=2))
    store = ScheduleStore(client[system.mongo_database])
    try:
        yield Scheduler(store=store, request_job=request_job, clock=clock), clock
    finally:
        await broker.stop()
        await client.close()


async def test_a_definition_shows_its_schedule_next_firing_and_skipped_firings(
    page: Page, seeder: Seeder, console_keys: dict[str, str], scheduler: tuple[Scheduler, Clock]
) -> None:
    ticker, clock = scheduler
    tag = secrets.token_hex(3)
    definition_id = await stopping_definition(
        seeder, tag, schedule={"cron": "*/30 * * * *", "timezone": "Europe/Paris"}
    )
    # Other tests' definitions have no schedule: only this one's firings are counted.
    assert await ticker.tick() == 0  # a new schedule starts with its next firing
    clock.now += timedelta(minutes=30, seconds=2)
    assert await ticker.tick() == 1
    first_at = clock.now.replace(second=0)
    job_id = (await seeder.client.get(f"/api/v1/job-definitions/{definition_id}/firings")).json()[
        "items"
    ][0]["job_id"]

    async def taken_up() -> bool:
        # The request goes through Kafka to job-api's intake: readable a moment later.
        return (await seeder.client.get(f"/api/v1/jobs/{job_id}")).status_code == 200

    await eventually(taken_up, timeout=60, what=f"the firing's job {job_id}")
    await seeder.wait_status(job_id, "THRESHOLD")
    # The next firing comes while the job waits at its threshold: skipped, saying why.
    clock.now += timedelta(minutes=30)
    assert await ticker.tick() == 1

    await sign_in(page, console_keys["viewer"])
    await page.goto(f"/#/definitions/{definition_id}")
    section = page.get_by_test_id("schedule")
    await expect(section.get_by_test_id("schedule-rule")).to_have_text(
        "cron */30 * * * * (Europe/Paris)"
    )
    await expect(section.get_by_test_id("schedule-timezone")).to_have_text("Europe/Paris")
    next_time = section.get_by_test_id("schedule-next").locator("time")
    next_at = datetime.fromisoformat(str(await next_time.get_attribute("datetime")))
    assert timedelta(0) < next_at - datetime.now(UTC) <= timedelta(minutes=30)
    # "in 12 min", or "in less than a minute" when the test runs just before a firing.
    await expect(section.get_by_test_id("schedule-next")).to_contain_text(
        re.compile(r"in (\d|less than a minute)")
    )

    firings = section.get_by_test_id("firing-row")
    await expect(firings).to_have_count(2)
    skipped, requested = firings.nth(0), firings.nth(1)
    await expect(skipped).to_have_attribute("data-status", "skipped")
    await expect(skipped.get_by_test_id("firing-status")).to_have_text("Skipped")
    await expect(skipped.get_by_test_id("firing-reason")).to_have_text(
        f"job {job_id} of this definition is THRESHOLD"
    )
    await expect(requested.get_by_test_id("firing-status")).to_have_text("Job requested")
    await expect(requested.locator("time").first).to_have_attribute(
        "datetime", first_at.isoformat().replace("+00:00", ".000Z")
    )
    await expect(page.get_by_test_id("recent-job-row")).to_have_attribute("data-job-id", job_id)
    await expect(page.get_by_test_id("btn-run-now")).to_have_count(0)
    await screenshot(page, "definition-schedule.png")

    await requested.get_by_test_id("firing-job").click()
    await expect(page.get_by_test_id("job-id")).to_have_text(job_id)
    job = await seeder.job(job_id)
    assert job["requested_by"] == "scheduler"
    assert job["request_id"] == f"schedule:{definition_id}:{first_at:%Y-%m-%dT%H:%M:%SZ}"

    # A definition without a schedule says so.
    plain = await stopping_definition(seeder, secrets.token_hex(3))
    await page.goto(f"/#/definitions/{plain}")
    await expect(page.get_by_test_id("schedule-none")).to_contain_text("No schedule")


async def test_an_admin_sets_a_schedule_and_recipients_with_errors_at_their_fields(
    page: Page, seeder: Seeder, console_keys: dict[str, str]
) -> None:
    definition_id = await stopping_definition(seeder, secrets.token_hex(3))
    await sign_in(page, console_keys["admin"])
    await page.goto(f"/#/definitions/{definition_id}/edit")
    form = page.get_by_test_id("definition-form")
    await expect(form.get_by_test_id("schedule-cron")).to_be_hidden()
    await form.get_by_label("Runs").select_option("cron")
    await form.get_by_label("Cron expression").fill("*/30 * * *")
    await form.get_by_label("Time zone").fill("Mars/Olympus")
    await page.get_by_test_id("definition-save").click()
    cron_error = page.locator('[data-testid="field-error"][data-loc="schedule.cron"]')
    zone_error = page.locator('[data-testid="field-error"][data-loc="schedule.timezone"]')
    await expect(zone_error).to_contain_text("unknown time zone 'Mars/Olympus'")
    await expect(form.get_by_test_id("schedule-timezone-input")).to_have_attribute(
        "aria-invalid", "true"
    )
    await form.get_by_label("Time zone").fill("Europe/Paris")
    await page.get_by_test_id("definition-save").click()
    await expect(cron_error).to_be_visible()
    await expect(form.get_by_test_id("schedule-cron")).to_have_attribute("aria-invalid", "true")

    await form.get_by_label("Cron expression").fill("0 6 * * 1-5")
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("schedule-rule")).to_have_text(
        "cron 0 6 * * 1-5 (Europe/Paris)"
    )
    await expect(page.get_by_test_id("schedule-next").locator("time")).to_be_visible()
    await expect(page.get_by_test_id("firings-empty")).to_be_visible()
    stored = await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")
    assert stored.json()["schedule"] == {
        "cron": "0 6 * * 1-5",
        "timezone": "Europe/Paris",
        "interval_minutes": None,
    }

    # Every 30 minutes, then no schedule at all: each a new version.
    await page.get_by_test_id("btn-edit-definition").click()
    await expect(form.get_by_label("Cron expression")).to_have_value("0 6 * * 1-5")
    await form.get_by_label("Runs").select_option("interval")
    await form.get_by_label("Every (minutes)").fill("30")
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("schedule-rule")).to_have_text("every 30 minutes")
    await page.get_by_test_id("btn-edit-definition").click()
    await expect(form.get_by_label("Every (minutes)")).to_have_value("30")
    await form.get_by_label("Runs").select_option("")
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("schedule-none")).to_contain_text("No schedule")
    stored = await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")
    assert stored.json()["schedule"] is None
    assert stored.json()["version"] == 4

    # Recipients: each wrong field, and a recipient with no channel, shown where it is.
    await page.get_by_test_id("btn-edit-definition").click()
    await expect(page.get_by_test_id("definition-save")).to_be_enabled()
    await form.get_by_test_id("add-recipient").click()
    await form.get_by_test_id("add-recipient").click()
    first, second = (
        form.get_by_test_id("recipient-row").nth(0),
        form.get_by_test_id("recipient-row").nth(1),
    )
    await first.get_by_test_id("recipient-name").fill("iam-team")
    await first.get_by_test_id("recipient-webhook").fill("not a url")
    await first.get_by_test_id("recipient-email").fill("nope")
    await second.get_by_test_id("recipient-name").fill("on-call")
    await form.get_by_test_id("notify-on-completed").check()
    await page.get_by_test_id("definition-save").click()
    for loc in ("recipients.0.webhook_url", "recipients.0.email", "recipients.1"):
        await expect(page.locator(f'[data-testid="field-error"][data-loc="{loc}"]')).to_be_visible()
    await expect(second.get_by_test_id("field-error")).to_contain_text("give a webhook_url")
    await first.get_by_test_id("recipient-webhook").fill("https://hooks.example.com/iam")
    await first.get_by_test_id("recipient-email").fill("iam-team@example.org")
    await second.get_by_test_id("remove-recipient").click()
    await page.get_by_test_id("definition-save").click()
    await expect(page.get_by_test_id("definition-recipient")).to_have_text(
        "iam-team: webhook https://hooks.example.com/iam, email iam-team@example.org"
    )
    await expect(page.get_by_test_id("definition-recipients")).to_contain_text(
        "on a threshold, a failure, completion"
    )
    stored = await seeder.client.get(f"/api/v1/job-definitions/{definition_id}")
    assert stored.json()["notify_on"] == ["threshold", "failed", "completed"]
    assert [r["name"] for r in stored.json()["recipients"]] == ["iam-team"]
