"""What a new admin and a new user trip over in their first hour (issue 15), in a real
browser: the admin page after its forms (POST/redirect/GET, no Remove of oneself, Open only
where the admin may go), a slow start on the spawn page (its steps, the time, the log), and
the interface chosen on the home page.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this directory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

PASSWORD = "first-hour-password"
SLOW_SERVER_SAYS = "the slow server is still thinking"


async def log_in(page: Page, hub: RunningHub, name: str, password: str) -> None:
    await page.goto(f"{hub.url}/hub/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/hub/home")


@contextlib.contextmanager
def servers_that_print_and_never_answer(hub: RunningHub) -> Iterator[None]:
    """Servers write a line to their log, then never answer: a start that stays slow."""
    spawner_config = hub.app.config.LocalProcessSpawner
    program = f"import time; print({SLOW_SERVER_SAYS!r}, flush=True); time.sleep(300)"
    spawner_config.cmd = [sys.executable, "-c", program]
    try:
        yield
    finally:
        del spawner_config["cmd"]


@pytest.fixture
async def bob(hub: RunningHub) -> AsyncIterator[str]:
    """Another user, whose server is stopped afterwards."""
    user = await hub.add_user(hub.unique_name("bob"), PASSWORD)
    try:
        yield user.name
    finally:
        await hub.app.servers.stop(user)


async def test_admin_forms_redirect_and_never_offer_to_remove_oneself(
    hub: RunningHub, bob: str, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await log_in(page, hub, hub.admin_name, hub.admin_password)
    await page.goto(f"{hub.url}/hub/admin")
    own_row = page.locator(f'tr[data-user="{hub.admin_name}"]')
    await expect(own_row.get_by_role("button", name="Reset password")).to_be_visible()
    await expect(own_row.get_by_role("button", name="Remove")).to_have_count(0)
    bobs_row = page.locator(f'tr[data-user="{bob}"]')
    await expect(bobs_row.get_by_role("button", name="Remove")).to_be_visible()

    newcomer = hub.unique_name("newcomer")
    await page.get_by_label("User name").fill(newcomer)
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.locator(".notice")).to_contain_text(f"Added {newcomer}.")
    password = await page.locator("#secret").text_content()
    assert page.url == f"{hub.url}/hub/admin", page.url  # the page's, not the POST's URL
    assert password and password not in page.url
    await page.reload()  # no form posted again, and the password is not shown again
    await expect(page.locator("#secret")).to_have_count(0)
    await expect(page.locator(f'tr[data-user="{newcomer}"]')).to_have_count(1)


async def test_admin_starting_bobs_slow_server_sees_its_steps_time_and_log(
    hub: RunningHub, bob: str, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await log_in(page, hub, hub.admin_name, hub.admin_password)
    await page.goto(f"{hub.url}/hub/admin")
    with servers_that_print_and_never_answer(hub):
        row = page.locator(f'tr[data-user="{bob}"]')
        await row.get_by_role("button", name="Start").click()
        await expect(page).to_have_url(re.compile(rf"/hub/spawn-pending/{bob}\?next="))
        await expect(page.get_by_role("heading", level=1)).to_have_text(f"Starting {bob}'s server")
        waiting = page.locator('#spawn-steps li[data-phase="waiting"]')
        await expect(waiting).to_have_attribute("aria-current", "step", timeout=60_000)
        await expect(page.locator('#spawn-steps li[data-phase="starting"]')).to_have_class(
            re.compile(r"\bdone\b")
        )
        await expect(page.locator("#progress-message")).to_have_text(
            "Waiting for the server to answer"
        )
        await expect(page.locator("#spawn-elapsed")).not_to_have_text("0 s")
        await expect(page.locator("body")).not_to_contain_text("your server")
        slow = page.locator("#spawn-slow")
        await expect(slow).to_be_visible(timeout=90_000)  # once the start counts as slow
        async with page.context.expect_page() as opened:
            await slow.get_by_role("link", name="See the server's log").click()
        log_page = await opened.value
        await expect(log_page.locator("pre.log")).to_contain_text(SLOW_SERVER_SAYS)
        await expect(log_page.get_by_role("heading", level=1)).to_have_text(
            f"Log of {bob}'s server"
        )

        # the admin page, meanwhile: no Open for a server the admin may not use
        await page.goto(f"{hub.url}/hub/admin")
        await expect(page.locator(f'tr[data-user="{bob}"]')).to_contain_text("Starting…")


async def test_choosing_notebook_on_the_home_page_is_remembered(
    hub: RunningHub, bob: str, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await log_in(page, hub, bob, PASSWORD)
    await expect(page.get_by_role("heading", name="Services")).to_have_count(0)
    choice = page.get_by_role("group", name="Open my server in")
    await expect(choice.get_by_label("JupyterLab")).to_be_checked()
    await choice.get_by_label("Notebook").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Your server opens in Notebook.")
    await page.reload()
    await expect(page.get_by_role("status")).to_have_count(0)  # said once
    await expect(choice.get_by_label("Notebook")).to_be_checked()


async def test_a_queued_start_shows_its_place_in_line(
    hub: RunningHub, bob: str, browser: BrowserContext
) -> None:
    manager = hub.app.servers
    saved_limit = manager.concurrent_spawn_limit
    ahead = await hub.add_user(hub.unique_name("ahead"), PASSWORD)
    page = await browser.new_page()
    await log_in(page, hub, bob, PASSWORD)
    with servers_that_print_and_never_answer(hub):
        manager.concurrent_spawn_limit = 1
        try:
            await manager.start(ahead)
            await page.get_by_role("button", name="Start").click()
            queued = page.locator('#spawn-steps li[data-phase="queued"]')
            await expect(queued).to_have_attribute("aria-current", "step")
            await expect(queued).to_have_text("Waiting for a start slot (number 1 in line)")
            await expect(page.get_by_role("heading", level=1)).to_have_text("Starting your server")
        finally:
            manager.concurrent_spawn_limit = saved_limit
            await manager.stop(ahead)
