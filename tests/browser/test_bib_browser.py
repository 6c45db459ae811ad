"""Citing in JupyterLab, in a real browser: a user writes a citation in a markdown cell,
renders it, sees links with tooltips from the lab bibliography, and follows one to its entry.

Real hub (tests/hub/conftest.py) with the repository's example ``bibliography.bib``, real
user server running JupyterLab with gilhub's prebuilt extension, Debian's chromium.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy.engine import URL

from gilhub.servers import ServerState
from gilhub.users import get_user_by_name
from tests.bibliography.conftest import EXAMPLE_BIB, hub_with_bibliography
from tests.hub.conftest import RunningHub

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

PASSWORD = "citer-password-1"
# Cold JupyterLab on a small shared machine: generous, never asserted as a duration.
SLOW = 120_000
CITATION = r"As shown in [@einstein1905electrodynamics; \citep{shannon1948communication}]"


@pytest.fixture(scope="module")
async def bib_hub(
    database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    bib_path = tmp_path_factory.mktemp("lab") / "bibliography.bib"
    shutil.copyfile(EXAMPLE_BIB, bib_path)
    async with hub_with_bibliography(
        database_url, tmp_path_factory.mktemp("hub-data"), bib_path
    ) as running:
        yield running


async def server_running(hub: RunningHub, name: str) -> None:
    """Start the user's server through the hub's ServerManager and wait until it runs."""
    async with hub.app.db.connect() as conn:
        user = await get_user_by_name(conn, name)
    await hub.app.servers.start(user)
    async with asyncio.timeout(SLOW / 1000):
        while (status := hub.app.servers.status(name)).state != ServerState.RUNNING:
            assert status.state != ServerState.STOPPED, f"the server did not start: {status.error}"
            await asyncio.sleep(0.2)


async def open_jupyterlab(page: Page, hub: RunningHub, name: str) -> None:
    """Log in through the hub's login page, which sends me on to my JupyterLab."""
    await page.goto(f"{hub.url}/hub/login?next=/user/{name}/lab")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(rf"/user/{name}/lab"), timeout=SLOW)


async def run_command(page: Page, label: str) -> None:
    await page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    await palette.fill(label)
    await page.locator(".lm-CommandPalette-item", has_text=label).first.click()


async def commands_insert_a_citation_and_references(page: Page) -> None:
    """The extension's two commands, with an unknown key marked on the way."""
    await page.bring_to_front()
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    await notebook.locator(".jp-Cell").nth(1).locator(".cm-content").click()
    cell = notebook.locator(".jp-Cell").nth(1)
    await page.keyboard.press("Escape")
    await page.keyboard.press("m")
    await page.keyboard.press("Enter")
    await page.keyboard.insert_text(
        'Unknown: [@nosuchkey2099]. See <cite data-cite="bell1964epr">Bell\'s paper</cite>. Also '
    )
    await run_command(page, "Insert Citation")
    dialog = page.locator(".jp-Dialog")
    await dialog.locator("input[type=search]").fill("higgs")
    await dialog.locator("li[data-key='higgs1964broken']").click()
    await dialog.get_by_role("button", name="Insert").click()
    await expect(cell.locator(".cm-content")).to_contain_text("[@higgs1964broken]")
    await page.keyboard.press("Shift+Enter")
    missing = cell.locator(".gilhub-cite-missing")
    await expect(missing).to_have_text("?nosuchkey2099", timeout=SLOW)
    await expect(cell.locator("a.gilhub-cite[data-cite='higgs1964broken']")).to_have_text(
        "Higgs 1964"
    )
    bell = cell.locator("cite a.gilhub-cite[data-cite='bell1964epr']")
    await expect(bell).to_have_text("Bell's paper")

    await run_command(page, "Insert/Refresh References")
    references = notebook.locator("ol.gilhub-references")
    await expect(references).to_have_count(1, timeout=SLOW)
    items = references.locator("li")
    await expect(items).to_have_count(5)
    await expect(items.nth(0)).to_contain_text("Zur Elektrodynamik bewegter Körper")
    await expect(items.nth(2)).to_contain_text("not in the bibliography")
    await expect(items.nth(3)).to_contain_text("On the Einstein Podolsky Rosen paradox")
    await run_command(page, "Insert/Refresh References")  # refreshed, not repeated
    await expect(notebook.locator("ol.gilhub-references")).to_have_count(1)


async def test_citation_links_tooltips_and_entry(bib_hub: RunningHub, browser: BrowserContext):
    name = bib_hub.unique_name("citer")
    await bib_hub.add_user(name, PASSWORD)
    page = await browser.new_page()
    try:
        await server_running(bib_hub, name)
        await open_jupyterlab(page, bib_hub, name)

        card = page.locator('.jp-LauncherCard[data-category="Notebook"][title*="Python 3"]')
        await card.first.click(timeout=SLOW)
        notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
        await expect(notebook).to_be_visible(timeout=SLOW)
        await notebook.locator(".jp-Cell .cm-content").first.click()
        await page.keyboard.press("Escape")
        await page.keyboard.press("m")  # make it a markdown cell
        await page.keyboard.press("Enter")
        await page.keyboard.insert_text(CITATION)
        await page.keyboard.press("Shift+Enter")

        rendered = notebook.locator(".jp-MarkdownCell .jp-RenderedMarkdown").first
        links = rendered.locator("a.gilhub-cite")
        await expect(links).to_have_count(2, timeout=SLOW)
        await expect(links.nth(0)).to_have_text("Einstein 1905")
        await expect(links.nth(1)).to_have_text("Shannon 1948")
        await expect(rendered).to_contain_text("As shown in (Einstein 1905; Shannon 1948)")

        for link, title in (
            (links.nth(1), "A Mathematical Theory of Communication"),
            (links.nth(0), "Zur Elektrodynamik bewegter Körper"),
        ):
            await link.hover()
            tooltip = page.locator(".gilhub-cite-tooltip")
            await expect(tooltip).to_be_visible()
            await expect(tooltip).to_contain_text(title)

        async with browser.expect_page() as new_tab:
            await links.nth(0).click()
        bib_page = await new_tab.value
        entry = bib_page.locator('[id="einstein1905electrodynamics"]')
        await expect(entry).to_be_visible(timeout=SLOW)
        await expect(bib_page).to_have_url(re.compile(r"/hub/bib.*#einstein1905electrodynamics$"))
        await expect(entry).to_contain_text("Zur Elektrodynamik bewegter Körper")
        await expect(entry).to_have_class(re.compile("bib-target"))
        await bib_page.close()

        await commands_insert_a_citation_and_references(page)
    finally:
        async with bib_hub.client(
            headers={"Authorization": f"token {await bib_hub.token_for(name)}"}
        ) as api:
            await api.delete(f"/hub/api/users/{name}/server")
