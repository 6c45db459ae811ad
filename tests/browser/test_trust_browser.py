"""Issue 9, finding 1 replayed in a real browser: a signed notebook does not travel.

Alice saves a notebook whose output is a script (her server signs it with her secret) and
pushes it to the repository with its outputs. Bob pulls it and opens it in JupyterLab: the
script does not run and his token list is unchanged. The same notebook opened by Alice runs
its script, which shows that the test would see it run.

Real hub (tests/hub/conftest.py, users isolated as by default), real JupyterLab servers,
Debian's chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import secrets

import httpx
import nbformat
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.test_hub_browser import PASSWORD, SLOW
from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "evil.ipynb"


def notebook_with_a_script(victim: str) -> dict:
    """An output that marks the page and asks for an API token with the victim's cookie."""
    script = (
        "<script>window.gilhubScriptRan = true;"
        "const xsrf = document.cookie.match(/_xsrf=([^;]+)/);"
        f"fetch('/hub/api/users/{victim}/tokens', {{method: 'POST', body: '{{}}',"
        " headers: {'X-XSRFToken': xsrf ? decodeURIComponent(xsrf[1]) : ''}});</script>"
    )
    output = nbformat.v4.new_output("display_data", data={"text/html": script})
    cell = nbformat.v4.new_code_cell("display(HTML(script))", outputs=[output])
    cell.metadata["trusted"] = True  # as JupyterLab marks the cells it ran
    return nbformat.v4.new_notebook(cells=[cell])


async def api_client(hub: RunningHub, name: str) -> httpx.AsyncClient:
    return hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})


async def start_server(hub: RunningHub, api: httpx.AsyncClient, name: str) -> None:
    assert (await api.post(f"/hub/api/users/{name}/server")).status_code in (201, 202)
    async with asyncio.timeout(180):
        while hub.app.servers.status(name).state != "running":
            await asyncio.sleep(0.2)


async def open_notebook(browser: BrowserContext, hub: RunningHub, name: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{hub.url}/hub/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.goto(f"{hub.url}/user/{name}/lab/tree/{NOTEBOOK}?reset")
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    await expect(output.first).to_be_attached(timeout=SLOW)
    return page


async def script_ran(page: Page) -> bool:
    return bool(await page.evaluate("window.gilhubScriptRan === true"))


async def test_a_pulled_notebook_signed_by_someone_else_runs_no_script(
    hub: RunningHub, browser: BrowserContext
):
    alice = await hub.add_user(f"alice-{secrets.token_hex(4)}", PASSWORD)
    bob = await hub.add_user(f"bob-{secrets.token_hex(4)}", PASSWORD)
    alice_api, bob_api = await api_client(hub, alice.name), await api_client(hub, bob.name)
    await start_server(hub, alice_api, alice.name)
    await start_server(hub, bob_api, bob.name)
    body = {"type": "notebook", "content": notebook_with_a_script(bob.name)}
    saved = await alice_api.put(f"/user/{alice.name}/api/contents/{NOTEBOOK}", json=body)
    assert saved.status_code == 201, saved.text
    push = {"source": NOTEBOOK, "path": f"{alice.name}/{NOTEBOOK}", "message": "look",
            "keep_outputs": True}  # fmt: skip
    assert (await alice_api.post("/hub/api/repo/push", json=push)).status_code == 201
    pull = {"path": f"{alice.name}/{NOTEBOOK}", "dest": NOTEBOOK}
    assert (await bob_api.post("/hub/api/repo/pull", json=pull)).status_code == 201
    tokens_before = (await bob_api.get(f"/hub/api/users/{bob.name}/tokens")).json()

    try:
        alices_page = await open_notebook(browser, hub, alice.name)
        await alices_page.wait_for_function("window.gilhubScriptRan === true", timeout=SLOW)
        await browser.clear_cookies()

        bobs_page = await open_notebook(browser, hub, bob.name)  # its output rendered
        assert not await script_ran(bobs_page)
        tokens_after = (await bob_api.get(f"/hub/api/users/{bob.name}/tokens")).json()
        assert tokens_after == tokens_before
    finally:
        for api, name in ((alice_api, alice.name), (bob_api, bob.name)):
            await api.delete(f"/hub/api/users/{name}/server")
