"""SampleDB's one-click analysis in a real browser (issue 11's scenario).

A page on another site (``localhost`` against the hub's ``127.0.0.1``: another
origin and another site, so the hub's SameSite=Lax cookie stays home) holds
SampleDB's exact form and submits it while the person is logged out. They log
in, confirm, watch their server start, land in JupyterLab with the new
notebook open, run it, and see the injected values with their Python types.

The second scenario stays in JupyterLab: "New from Template…" in the launcher
(and the File → New menu) asks for a template and its values and opens the result.

Real hub with a real JupyterLab server; Debian's chromium through Playwright.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import AsyncIterator

import nbformat
import pytest
from playwright.async_api import BrowserContext, expect
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from tests.browser.test_hub_browser import PASSWORD, SLOW, log_in, start_and_watch
from tests.browser.test_repo_browser import run_command
from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this module
from tests.notebook_templates.helpers import SAMPLEDB_TEMPLATE, push_template, template_bytes

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

MEASUREMENT = {
    "measurement_name": "Experiment-12345",
    "created": "2026-11-02 10:00:00",
    "sample_id": 42,
    "calibrated": True,
    "operator": None,
    "notes": 'said "fine"\nthen left',
}
CHECK_CELL = (
    "print(type(sample_id).__name__, type(calibrated).__name__, operator is None,"
    " repr(measurement_name), notes == 'said \"fine\"\\nthen left')"
)
EXPECTED_OUTPUT = "int bool True 'Experiment-12345' True"


def sampledb_page(hub_url: str) -> str:
    """SampleDB's form as its templates render it: a POST with the JSON in ``params``."""
    action = f"{hub_url}/templates/t/{SAMPLEDB_TEMPLATE}"
    params = html.escape(json.dumps(MEASUREMENT), quote=True)
    return (
        "<!DOCTYPE html><title>SampleDB</title>"
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="params" value=\'{params}\'>'
        '<button type="submit">Open in Jupyter</button></form>'
    )


@pytest.fixture
async def sampledb(hub: RunningHub) -> AsyncIterator[str]:
    """A tiny web server on another site serving the form; its URL."""
    page = sampledb_page(hub.url)

    class FormPage(RequestHandler):
        def get(self) -> None:
            self.finish(page)

    server = HTTPServer(Application([(r"/", FormPage)]))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    try:
        yield f"http://localhost:{sockets[0].getsockname()[1]}/"
    finally:
        server.stop()
        await server.close_all_connections()


def analysis_template() -> bytes:
    """The test template: the usual parameters cell, then a cell that reports the types."""
    notebook = nbformat.reads(template_bytes().decode(), as_version=4)
    notebook.cells[2].source = CHECK_CELL
    return nbformat.writes(notebook).encode()


@pytest.fixture
async def newcomer(hub: RunningHub) -> AsyncIterator[str]:
    """A new user (a random name: JupyterLab keeps workspaces per URL) and the analysis
    template; their server is stopped afterwards (ask for this before ``browser``, so that
    a failure's screenshots come first)."""
    name = f"sam-{secrets.token_hex(4)}"
    await hub.add_user(name, PASSWORD)
    await push_template(hub, SAMPLEDB_TEMPLATE, analysis_template())
    try:
        yield name
    finally:
        async with hub.client(
            headers={"Authorization": f"token {await hub.token_for(name)}"}
        ) as api:
            await api.delete(f"/hub/api/users/{name}/server")


async def test_sampledb_form_to_running_notebook(
    hub: RunningHub, sampledb: str, newcomer: str, browser: BrowserContext
):
    name = newcomer
    page = await browser.new_page()
    await page.goto(sampledb)
    await page.get_by_role("button", name="Open in Jupyter").click()

    await expect(page).to_have_url(re.compile(r"/hub/login\?next="))
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()

    confirm = page.locator("#template-confirm")
    await expect(confirm).to_contain_text(f"Template {SAMPLEDB_TEMPLATE}, version 1")
    await expect(confirm).to_contain_text('"Experiment-12345"')
    await expect(confirm).to_contain_text("created as data_analysis.ipynb")
    await confirm.get_by_role("button", name="Create data_analysis.ipynb").click()

    await expect(page).to_have_url(
        re.compile(rf"/user/{name}/lab/tree/data_analysis\.ipynb"), timeout=SLOW
    )
    tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text="data_analysis.ipynb")
    await expect(tab).to_be_visible(timeout=SLOW)
    await expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
        [re.compile(r"Python 3 .*\| Idle")], timeout=SLOW
    )
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    injected = notebook.locator(".jp-Cell").nth(2)
    await expect(injected).to_contain_text('measurement_name = "Experiment-12345"')

    await run_command(page, "Run All Cells")
    output = notebook.locator(".jp-Cell").nth(3).locator(".jp-OutputArea-output")
    await expect(output).to_have_text(EXPECTED_OUTPUT, timeout=SLOW)


async def test_new_from_template_in_jupyterlab(
    hub: RunningHub, this_trees_extension: None, newcomer: str, browser: BrowserContext
):
    name = newcomer
    page = await browser.new_page()
    await log_in(page, hub, name)
    await start_and_watch(page, name)
    await page.locator(".lm-MenuBar-item", has_text="File").click()
    await page.locator(".lm-Menu-item", has_text="New").first.hover()
    await expect(page.locator(".lm-Menu-item", has_text="New from Template…")).to_be_visible()
    await page.keyboard.press("Escape")
    await page.keyboard.press("Escape")

    await page.locator(".jp-LauncherCard", has_text="From Template").click(timeout=SLOW)
    dialog = page.locator(".jp-Dialog")
    await dialog.locator("select[name=template]").select_option(SAMPLEDB_TEMPLATE)
    await expect(dialog).to_contain_text("the measurement in SampleDB")
    values = {**MEASUREMENT, "measurement_name": "From-the-lab"}
    await dialog.locator("textarea[name=params]").fill(json.dumps(values))
    await dialog.get_by_role("button", name="Create").click()

    tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text="data_analysis.ipynb")
    await expect(tab).to_be_visible(timeout=SLOW)
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    injected = notebook.locator(".jp-Cell").nth(2)
    await expect(injected).to_contain_text('measurement_name = "From-the-lab"')
    await expect(injected).to_contain_text("calibrated = True")
