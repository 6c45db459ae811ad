"""Runs from JupyterLab in a real browser (issue 12's scenario).

A user right-clicks a parameterised notebook in the file browser, chooses "Run with
Parameters…", changes a parameter in the form (from the keyboard), and follows the run in
the Runs panel until it completes; the executed notebook opens with the value injected.
From that notebook's toolbar they run it again with a long pause and cancel it in the panel.
The dialog and the panel pass axe-core (labels, names, contrast).

Real hub (tests/hub/conftest.py) with real runs (papermill in a worker process), a real
JupyterLab user server loading this tree's build of gilhub's extension; Debian's chromium
through Playwright.
"""

from __future__ import annotations

import re
import secrets

import nbformat
import pytest
from playwright.async_api import BrowserContext, expect

from gilhub.contents import query as contents
from tests.browser.test_accessibility import axe_script as axe_script
from tests.browser.test_accessibility import check_part
from tests.browser.test_hub_browser import PASSWORD, SLOW, log_in, start_and_watch
from tests.browser.test_repo_browser import leave_lab, reset_workspace
from tests.hub.conftest import RunningHub
from tests.hub.conftest import hub as hub  # the fixture, for this module
from tests.runs.helpers import notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

GREETING = "from the lab"


async def test_run_with_parameters_and_follow_it_in_the_runs_panel(
    hub: RunningHub, this_trees_extension: None, axe_script: str, browser: BrowserContext
):
    user = await hub.add_user(f"runner-{secrets.token_hex(4)}", PASSWORD)
    name = f"greet-{secrets.token_hex(3)}.ipynb"
    async with hub.app.db.begin() as conn:
        await contents.write_file(
            conn,
            user.db_role,
            name,
            notebook(
                "print(' / '.join([greeting] * repeat))",
                "import time\ntime.sleep(pause)",
                parameters="greeting = 'hello'  # who says it\nrepeat: int = 1\npause = 0",
            ),
        )
        elsewhere = nbformat.reads(notebook("1"), as_version=4)
        elsewhere.metadata.kernelspec.name = "nokernel"  # installed nowhere runs look
        elsewhere_name = f"elsewhere-{secrets.token_hex(3)}.ipynb"
        await contents.write_file(
            conn, user.db_role, elsewhere_name, nbformat.writes(elsewhere).encode()
        )
    page = await browser.new_page()
    dialog = page.locator(".jp-Dialog")

    async def run_with_parameters(notebook_name: str) -> None:
        await page.locator(f'.jp-DirListing-item[title^="Name: {notebook_name}"]').click(
            button="right", timeout=SLOW
        )
        await page.locator(".lm-Menu-item", has_text="Run with Parameters…").click()

    try:
        await log_in(page, hub, user.name)
        await start_and_watch(page, user.name)
        await reset_workspace(page, hub, user.name)

        # the kernels offered are those runs accept, not the user server's
        api = hub.client(headers={"Authorization": f"token {await hub.token_for(user.name)}"})
        accepted = (await api.get("/hub/api/runs/kernels")).json()["kernels"]
        await run_with_parameters(elsewhere_name)
        kernel = dialog.get_by_label("Kernel")
        await expect(kernel).to_have_value("python3", timeout=SLOW)
        offered = kernel.locator("option")
        await expect(offered).to_have_count(len(accepted))
        assert await offered.evaluate_all("options => options.map(o => o.value)") == [
            choice["name"] for choice in accepted
        ]
        await expect(dialog).to_contain_text(
            "names the kernel “nokernel”, which runs on the hub do not have"
        )
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_have_count(0)

        await run_with_parameters(name)
        greeting = dialog.get_by_label(re.compile(r"^greeting — who says it"))
        await expect(greeting).to_have_value('"hello"', timeout=SLOW)
        await expect(dialog.get_by_label(re.compile(r"^repeat \(int\)"))).to_have_value("1")
        await expect(dialog.get_by_label("Kernel")).to_have_value("python3")

        # from the keyboard: the first field has the focus; plain text is taken as text
        await expect(greeting).to_be_focused()
        await page.keyboard.press("Control+a")
        await page.keyboard.type(GREETING)
        await expect(dialog).to_contain_text("read as text")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Control+a")
        await page.keyboard.type("3")
        await expect(dialog).to_contain_text("read as a number")
        await check_part(page, ".jp-Dialog-content", "run-with-parameters", axe_script)
        await page.keyboard.press("Enter")

        panel = page.locator("#gilhub-runs")
        await expect(panel).to_be_visible(timeout=SLOW)
        run = panel.locator(".gilhub-run").first
        await expect(run).to_contain_text(name)
        await expect(run.locator(".gilhub-run-state")).to_have_text(
            "Completed: 3 of 3 cells", timeout=SLOW
        )
        await expect(run.locator(".gilhub-run-messages")).to_contain_text("INFO")
        run_id = await run.get_attribute("data-run")
        await expect(run.get_by_role("link", name="Run page")).to_have_attribute(
            "href", f"/hub/runs/{run_id}"
        )
        await expect(run.get_by_role("button", name="Cancel")).to_be_hidden()

        model = (await api.get(f"/hub/api/runs/{run_id}")).json()
        assert model["parameters"] == {"greeting": GREETING, "repeat": 3, "pause": 0}
        await check_part(page, "#gilhub-runs", "runs-panel", axe_script)

        await run.get_by_role("button", name="Open output").click()
        stem = name.removesuffix(".ipynb")
        tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text=stem)
        await expect(tab).to_be_visible(timeout=SLOW)
        executed = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
        await expect(executed).to_contain_text(f'greeting = "{GREETING}"', timeout=SLOW)
        await expect(executed.locator(".jp-OutputArea-output").first).to_have_text(
            " / ".join([GREETING] * 3)
        )

        # the notebook's toolbar runs it too; a run that takes too long is cancelled
        await page.locator(".jp-NotebookPanel:visible .gilhub-run-button").click()
        await dialog.get_by_label(re.compile(r"^pause")).fill("600")
        await dialog.get_by_role("button", name="Run").click()
        second = panel.locator(".gilhub-run").first
        await expect(second).not_to_have_attribute("data-run", run_id)
        await expect(second.locator(".gilhub-run-state")).to_have_text(
            re.compile(r"^Running cell 3"), timeout=SLOW
        )
        await second.get_by_role("button", name="Cancel").click()
        await page.locator(".jp-Dialog").get_by_role("button", name="Cancel the run").click()
        await expect(second.locator(".gilhub-run-state")).to_have_text(
            re.compile(r"^Cancelled after 2 of 3 cells"), timeout=SLOW
        )
        await expect(second.locator(".gilhub-run-messages")).to_contain_text("Cancelled.")
    finally:
        await leave_lab(page, hub, user.name)
