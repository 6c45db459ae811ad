"""Notebook 7 through the hub's proxy, in a real browser, after JupyterLab: every file the
pages load arrives, the fonts their stylesheets fetch included.

JupyterLab and Notebook 7 ship fonts under the same names; jupyter_server used to hand
Notebook 7's route the copy JupyterLab's route had found and refuse it (403), so the order
(JupyterLab first) is part of the test. The hub is the real in-process hub of
``tests/hub/conftest.py`` with a real user server; the browser is Debian's chromium.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import nbformat
import pytest
from playwright.async_api import BrowserContext, Page, Response, expect

from gilhub.contents import query as contents
from tests.browser.test_hub_browser import PASSWORD, SLOW, log_in, start_and_watch
from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this directory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "fonts.ipynb"
#: Probes of the front end for server extensions gilhub turns off in user servers
#: (Spawner.server_extensions): JupyterLab asks once and carries on without them.
PROBES_OF_EXTENSIONS_TURNED_OFF = re.compile(r"/user/[^/]+/(lsp/status|nbdime/api/isgit)\b")


@pytest.fixture
async def person(hub: RunningHub) -> AsyncIterator[str]:
    """A new user with a notebook; their server is stopped afterwards (ask before
    ``browser``)."""
    user = await hub.add_user(hub.unique_name("fonts"), PASSWORD)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Fonts")])
    async with hub.app.db.begin() as conn:
        await contents.write_file(conn, user.db_role, NOTEBOOK, nbformat.writes(notebook).encode())
    api = hub.client(headers={"Authorization": f"token {await hub.token_for(user.name)}"})
    try:
        yield user.name
    finally:
        await api.delete(f"/hub/api/users/{user.name}/server")


def failures_of(page: Page) -> list[str]:
    """The requests of ``page`` answered with an error, as they come."""
    failed: list[str] = []

    def note(response: Response) -> None:
        if response.status >= 400 and not PROBES_OF_EXTENSIONS_TURNED_OFF.search(response.url):
            failed.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", note)
    return failed


async def draw_font_awesome(page: Page) -> None:
    """Make the page fetch Font Awesome, which both front ends ship under the same file
    names (what icons of extensions such as nbdime's draw with; gilhub's default pages have
    none on screen, so it is asked for here)."""
    await page.evaluate("document.fonts.load('900 16px \"Font Awesome 5 Free\"')")


def is_font(directory: str):
    return lambda response: re.search(rf"/static/{directory}/[^/]+\.woff2$", response.url)


async def test_notebook7_after_jupyterlab_loads_every_file_through_the_proxy(
    hub: RunningHub, person: str, browser: BrowserContext
) -> None:
    name = person
    page = await browser.new_page()
    failed = failures_of(page)
    await log_in(page, hub, name)
    await start_and_watch(page, name)
    await page.goto(f"{hub.url}/user/{name}/lab/tree/{NOTEBOOK}")
    await expect(page.locator(".jp-Notebook .jp-MarkdownCell").first).to_be_visible(timeout=SLOW)
    async with page.expect_response(is_font("lab"), timeout=SLOW):
        await draw_font_awesome(page)

    await page.goto(f"{hub.url}/user/{name}/tree")
    await expect(page.get_by_text(NOTEBOOK).first).to_be_visible(timeout=SLOW)
    await page.goto(f"{hub.url}/user/{name}/notebooks/{NOTEBOOK}")
    await expect(page.locator(".jp-Notebook .jp-MarkdownCell").first).to_be_visible(timeout=SLOW)
    async with page.expect_response(is_font("notebook"), timeout=SLOW):
        await draw_font_awesome(page)
    await page.wait_for_load_state("networkidle", timeout=SLOW)
    assert failed == []
