"""Headless Chromium for the console tests: Debian's browser driven by Playwright, no download."""

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.support.processes import REPO

# Debian's `chromium` package; never `playwright install` (these machines have no internet).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
# The width the console is designed for; screenshots are taken at it.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# Every run writes its screenshots here; docs/screenshots holds the copies the README shows
# (`make screenshots` refreshes them from the last run), so a test run leaves git clean.
SCREENSHOTS = REPO / "test-results" / "screenshots"
# Long enough for a job to move through the whole system on a busy 2-core machine.
UI_TIMEOUT_MS = 30_000


def chromium_path() -> Path:
    found = CHROMIUM if CHROMIUM.exists() else None
    if found is None and (which := shutil.which("chromium")):
        found = Path(which)
    if found is None:
        # A failure, not a skip: the browser tests are part of what must pass.
        raise AssertionError(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
            "or set CHROMIUM_PATH"
        )
    return found


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """One headless browser; every test opens its own context (cookies) in it."""
    expect.set_options(timeout=UI_TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_path()), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def console_page(browser: Browser, base_url: str) -> AsyncIterator[Page]:
    """A fresh browser profile on the console, which fails the test on any script error."""
    context: BrowserContext = await browser.new_context(
        base_url=base_url, viewport=VIEWPORT, locale="en-GB", timezone_id="Europe/Paris"
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    # Reached only when the test itself passed, so its own failure is never masked.
    assert not errors, f"the console raised script errors: {errors}"


async def sign_in(page: Page, api_key: str) -> None:
    """Through the sign-in form, as a person would; lands on the jobs page."""
    await page.goto("/")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def row_of(page: Page, job_id: str) -> Locator:
    """The jobs list's row of one job instance."""
    return page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')


async def filter_by_definition(page: Page, definition_id: str) -> None:
    select = page.get_by_label("Definition")
    await expect(select.locator(f'option[value="{definition_id}"]')).to_be_attached()
    await select.select_option(definition_id)
    await expect(page).to_have_url(re.compile(f"definition_id={definition_id}"))


async def forced(page: Page, method: str, path: str, body: Any = None) -> int:
    """The status of a call made from the page with its session, as a bypassed button would."""
    status: int = await page.evaluate(
        """async ([method, path, body]) => {
            const csrf = (document.cookie.split('; ').find((c) => c.startsWith('pj_csrf=')) ?? '=')
                .split('=')[1];
            const headers = {'X-CSRF-Token': csrf, 'Content-Type': 'application/json'};
            const init = {method, headers};
            if (body !== null) init.body = JSON.stringify(body);
            return (await fetch(path, init)).status;
        }""",
        [method, path, body],
    )
    return status
