"""A person's first session, in a real browser: log in, watch the server start, work in
JupyterLab, save, reload, and find the notebook as saved (in the page, the API and PostgreSQL).

The hub is hub-core's real in-process hub (``tests/hub/conftest.py``), with the real spawner
and ``PostgresContentsManager``; the browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import nbformat
import pytest
from playwright.async_api import BrowserContext, Page, expect

from gilhub.contents.query import read_file
from gilhub.users import get_user_by_name
from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this directory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "first-steps.ipynb"
PASSWORD = "browser-test-password"
# Cold JupyterLab on a small shared machine: generous, never asserted as a duration.
SLOW = 120_000


async def log_in(page: Page, hub: RunningHub, name: str) -> None:
    """Open my server's URL; the hub sends me to log in first."""
    await page.goto(f"{hub.url}/user/{name}/lab")
    await expect(page).to_have_url(re.compile(r"/hub/login\?next="))
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def start_and_watch(page: Page, name: str) -> None:
    """My stopped server starts as I arrive (as in JupyterHub, through /hub/spawn): I see
    the progress page, and arrive in JupyterLab."""
    await expect(page).to_have_url(re.compile(rf"/hub/spawn-pending/{name}\?next="))
    await expect(page.locator("#spawn-pending")).to_be_visible()
    await expect(page.locator("#progress-bar")).to_be_attached()
    await expect(page).to_have_url(re.compile(rf"/user/{name}/lab"), timeout=SLOW)


async def new_notebook_runs(page: Page) -> None:
    """Create a Python 3 notebook from the launcher, run ``1+1``, see ``2``, save it."""
    card = page.locator('.jp-LauncherCard[data-category="Notebook"][title*="Python 3"]')
    await card.first.click(timeout=SLOW)
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    await expect(notebook).to_be_visible(timeout=SLOW)
    # the status bar names the kernel once it is connected and idle
    await expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
        [re.compile(r"Python 3 .*\| Idle")], timeout=SLOW
    )
    editor = notebook.locator(".jp-CodeCell .cm-content").first
    await editor.click()
    await page.keyboard.type("1+1")
    await page.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-CodeCell .jp-OutputArea-output").first
    await expect(output).to_have_text("2", timeout=SLOW)
    await page.keyboard.press("Control+s")
    # JupyterLab asks for a name on the first save of an "Untitled" notebook
    dialog = page.locator(".jp-Dialog")
    await dialog.locator("input.jp-mod-styled").first.fill(NOTEBOOK)
    await dialog.get_by_role("button", name="Rename and Save").click()
    await expect(dialog).to_have_count(0)


async def saved_notebook(api: httpx.AsyncClient, name: str) -> dict:
    """The notebook as the server's contents API returns it, once it has been saved."""
    async with asyncio.timeout(60):
        while True:
            response = await api.get(f"/user/{name}/api/contents/{NOTEBOOK}")
            if response.status_code == 200:
                model = response.json()["content"]
                if model["cells"] and model["cells"][0]["source"] == "1+1":
                    return model
            await asyncio.sleep(0.2)


async def stored_notebook(hub: RunningHub, name: str) -> nbformat.NotebookNode:
    """The notebook as stored in PostgreSQL, in the user's own rows."""
    async with hub.app.db.connect() as conn:
        user = await get_user_by_name(conn, name)
        record = await read_file(conn, user.db_role, NOTEBOOK)
    assert record is not None, "the notebook is not in PostgreSQL"
    return nbformat.reads(record.content.decode("utf-8"), as_version=4)


def first_result(cell: dict) -> str:
    return "".join(
        output["data"]["text/plain"]
        for output in cell["outputs"]
        if output["output_type"] == "execute_result"
    )


@pytest.fixture
async def person(hub: RunningHub) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A new user with a password, and an API client of theirs; their server is stopped
    afterwards (after the browser's screenshots: ask for this fixture before ``browser``)."""
    name = hub.unique_name("browser")
    await hub.add_user(name, PASSWORD)
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
    try:
        yield name, api
    finally:
        await api.delete(f"/hub/api/users/{name}/server")


async def test_log_in_start_run_save_reload(
    hub: RunningHub, person: tuple[str, httpx.AsyncClient], browser: BrowserContext
) -> None:
    name, api = person
    page = await browser.new_page()
    await log_in(page, hub, name)
    await start_and_watch(page, name)

    await new_notebook_runs(page)
    saved = await saved_notebook(api, name)
    assert first_result(saved["cells"][0]) == "2"
    stored = await stored_notebook(hub, name)
    assert stored.cells[0].source == "1+1"
    assert first_result(stored.cells[0]) == "2"

    await page.reload()
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    await expect(notebook).to_be_visible(timeout=SLOW)
    await expect(notebook.locator(".jp-CodeCell .cm-content").first).to_have_text("1+1")
    await expect(notebook.locator(".jp-CodeCell .jp-OutputArea-output").first).to_have_text("2")
    title = page.locator(".lm-TabBar-tab.jp-mod-current")
    await expect(title.first).to_contain_text(NOTEBOOK)


async def test_file_menu_log_out_ends_the_hub_session(
    hub: RunningHub, person: tuple[str, httpx.AsyncClient], browser: BrowserContext
) -> None:
    name, _ = person
    page = await browser.new_page()
    await log_in(page, hub, name)
    await start_and_watch(page, name)

    await page.locator(".lm-MenuBar-itemLabel", has_text="File").click(timeout=SLOW)
    items = page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel")
    log_out = items.filter(has_text=re.compile(r"^Log Out$"))
    await expect(log_out).to_have_count(1)
    await expect(items.filter(has_text=re.compile(r"^Shut Down$"))).to_have_count(1)
    await log_out.click()
    await expect(page).to_have_url(re.compile(r"/hub/logout$"))
    await page.get_by_role("button", name=f"Log out {name}").click()

    await page.goto(f"{hub.url}/hub/home")
    await expect(page).to_have_url(re.compile(r"/hub/login"))
