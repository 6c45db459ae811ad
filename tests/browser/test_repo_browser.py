"""The shared repository in a real browser (issue 4's scenario).

Alice pushes a notebook from JupyterLab (file browser context menu). Bob finds it by a
word in one of its cells, pulls it, changes it and pushes (through the hub's pages, over
real HTTP). Alice changes her copy in JupyterLab and pushes again: the stale push is
refused as a conflict, and the merge view shows both changes; she pushes the merge, sees it
rendered (with typeset math), and pulls it from JupyterLab into a new file.

Real hub (tests/hub/conftest.py) with a real JupyterLab user server and gilhub's prebuilt
extension; Debian's chromium through Playwright.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime

import nbformat
import pytest
from playwright.async_api import BrowserContext, Locator, Page, expect

from gilhub.contents import query as contents
from gilhub.repository.notebooks import parse_notebook, serialize_notebook
from tests.browser.test_accessibility import axe_script as axe_script
from tests.browser.test_accessibility import check_part
from tests.browser.test_hub_browser import PASSWORD, SLOW, log_in, start_and_watch
from tests.hub.conftest import RunningHub, post_form
from tests.hub.conftest import hub as hub  # the fixture, for this module
from tests.repository.helpers import notebook_bytes, push_notebook
from tests.runs.helpers import notebook as runs_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "shared-fit.ipynb"
WORD = "zeppelinium"


async def run_command(page: Page, label: str) -> None:
    await page.keyboard.press("Control+Shift+C")
    await page.locator(".lm-CommandPalette-input").fill(label)
    await page.locator(".lm-CommandPalette-item", has_text=label).first.click()


async def bob_finds_pulls_changes_and_pushes(hub: RunningHub, bob) -> None:
    """Bob's part, through the hub's own pages as his browser would use them."""
    web = await hub.login(bob.name, PASSWORD)
    found = await web.get("/hub/repo/search", params={"q": WORD})
    assert f'href="/hub/repo/entry/{NOTEBOOK}"' in found.text
    xsrf = {"_xsrf": hub.xsrf_token(web)}
    pulled = await post_form(web, "/hub/repo/pull", {"path": NOTEBOOK, **xsrf})
    assert pulled.status_code == 200 and "Open in JupyterLab" in pulled.text
    async with hub.app.db.begin() as conn:
        record = await contents.read_file(conn, bob.db_role, NOTEBOOK)
        notebook = parse_notebook(record.content)
        notebook.cells[1].source = "a = 2  # bob"
        await contents.write_file(conn, bob.db_role, NOTEBOOK, serialize_notebook(notebook))
    pushed = await web.post(
        "/hub/repo/push", data={"source": NOTEBOOK, "message": "bob's change", **xsrf}
    )
    assert pushed.status_code == 303, pushed.text


async def reset_workspace(page: Page, hub: RunningHub, name: str) -> None:
    """Start from (and leave) an empty JupyterLab layout.

    User servers that run under one OS account share JupyterLab's workspace
    files, so tabs left open by an earlier test would open here, and ours there.
    """
    await page.goto(f"{hub.url}/user/{name}/lab?reset")
    await expect(page.locator(".jp-DirListing-content")).to_be_visible(timeout=SLOW)


async def leave_lab(page: Page, hub: RunningHub, name: str) -> None:
    """Leave JupyterLab as it was found (an empty layout) and stop the user's server."""
    await reset_workspace(page, hub, name)
    async with hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"}) as api:
        await api.delete(f"/hub/api/users/{name}/server")


async def push_from_file_browser(page: Page) -> None:
    item = page.locator(f'.jp-DirListing-item[title^="Name: {NOTEBOOK}"]')
    await item.click(button="right", timeout=SLOW)
    await page.locator(".lm-Menu-item", has_text="Push to Repository").click()
    dialog = page.locator(".jp-Dialog")
    await dialog.locator("input[name=message]").fill("alice's first version")
    await dialog.get_by_role("button", name="Push").click()


async def test_push_find_pull_change_conflict_merge(
    hub: RunningHub, this_trees_extension: None, browser: BrowserContext
):
    # Random names: JupyterLab keeps workspaces (open tabs) per URL across test runs.
    alice = await hub.add_user(f"alice-{secrets.token_hex(4)}", PASSWORD)
    bob = await hub.add_user(f"bob-{secrets.token_hex(4)}", PASSWORD)
    first = notebook_bytes("a = 1", "b = 1", markdown=f"The {WORD} calibration of $n_e$")
    async with hub.app.db.begin() as conn:
        await contents.write_file(conn, alice.db_role, NOTEBOOK, first)
    page = await browser.new_page()
    try:
        await log_in(page, hub, alice.name)
        await start_and_watch(page, alice.name)
        await reset_workspace(page, hub, alice.name)

        await push_from_file_browser(page)
        done = page.locator(".jp-Dialog")
        await expect(done).to_contain_text(f"Pushed {NOTEBOOK} version 1", timeout=SLOW)
        await done.get_by_role("button", name="Ok").click()

        await bob_finds_pulls_changes_and_pushes(hub, bob)

        await page.locator(f'.jp-DirListing-item[title^="Name: {NOTEBOOK}"]').dblclick()
        await (
            page.locator(".jp-Dialog")
            .get_by_role("button", name="No Kernel", exact=True)
            .click(timeout=SLOW)
        )
        notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
        editor = notebook.locator(".jp-Cell").nth(2).locator(".cm-content")
        await editor.click(timeout=SLOW)
        await page.keyboard.press("Control+a")
        await page.keyboard.insert_text("b = 3  # alice")
        await page.keyboard.press("Control+s")
        await expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)

        await run_command(page, "Push to Repository")
        await page.locator(".jp-Dialog").get_by_role("button", name="Push").click()
        conflict = page.locator(".jp-Dialog")
        await expect(conflict).to_contain_text("has moved on", timeout=SLOW)
        await expect(conflict).to_contain_text(bob.name)
        await expect(conflict).to_contain_text("merge cleanly")

        async with browser.expect_page() as new_tab:
            await conflict.get_by_role("button", name="Show both changes").click()
        merge_view = await new_tab.value
        await expect(merge_view).to_have_url(re.compile(r"/hub/repo/conflict\?"))
        both = merge_view.locator(".merge-view")
        await expect(both).to_contain_text("a = 2  # bob")
        await expect(both).to_contain_text("b = 3  # alice")
        await merge_view.get_by_role("button", name="Push the merge").click()
        await expect(merge_view.locator("table.history")).to_contain_text("merge")
        history = await merge_view.locator("table.history tbody tr").all_inner_texts()
        assert [row.split()[0] for row in history] == ["3", "2", "1"]

        await merge_view.get_by_role("link", name="View", exact=True).click()
        view = merge_view.frame_locator("iframe.notebook-view")
        await expect(view.locator("body")).to_contain_text(WORD, timeout=SLOW)
        math = view.locator(".MathJax, .MathJax_CHTML, .MathJax_SVG").first
        await expect(math).to_be_attached(timeout=SLOW)

        await page.bring_to_front()
        await run_command(page, "Pull from Repository")
        dialog = page.locator(".jp-Dialog")
        # found by a word in one of its cells, chosen from the results, not typed from memory
        await dialog.get_by_label("Search the repository").fill(WORD)
        await dialog.get_by_role("option", name=re.compile(rf"^{NOTEBOOK} ")).click()
        await expect(dialog.locator("input[name=path]")).to_have_value(NOTEBOOK, timeout=SLOW)
        await dialog.locator("input[name=dest]").fill("merged-copy.ipynb")
        await dialog.get_by_role("button", name="Pull").click()
        report = page.locator(".jp-Dialog-content")
        await expect(report).to_contain_text(
            re.compile(rf"Pulled version \d+ of {NOTEBOOK} into merged-copy.ipynb"), timeout=SLOW
        )
        await report.get_by_role("button", name="Ok").click()
        copy = page.locator('.jp-DirListing-item[title^="Name: merged-copy.ipynb"]')
        await expect(copy).to_be_visible(timeout=SLOW)
        await expect(page.locator(".lm-TabBar-tab", has_text="merged-copy.ipynb")).to_be_visible(
            timeout=SLOW
        )
    finally:
        await leave_lab(page, hub, alice.name)


async def test_pull_found_by_searching_in_jupyterlab_says_what_happened(
    hub: RunningHub, this_trees_extension: None, axe_script: str, browser: BrowserContext
):
    """Issue 15: the pull dialog finds the entry by a word in it (chosen from the keyboard,
    not typed from memory), and every outcome is said: pulled where, already up to date,
    a newer version written beside the user's own copy, nothing pulled and why."""
    user = await hub.add_user(f"puller-{secrets.token_hex(4)}", PASSWORD)
    word = f"quokka{secrets.token_hex(3)}"
    entry = f"analysis/drift-{secrets.token_hex(3)}.ipynb"
    # with a kernel named, so that opening it asks nothing
    await push_notebook(hub, entry, runs_notebook(f"x = 1  # the {word} drift"))
    page = await browser.new_page()

    async def pull(fill_dialog) -> Locator:
        await run_command(page, "Pull from Repository")
        dialog = page.locator(".jp-Dialog")
        await expect(dialog.get_by_label("Search the repository")).to_be_focused()
        await fill_dialog(dialog)
        await dialog.get_by_role("button", name="Pull").click()
        return page.locator(".jp-Dialog-content")

    async def search_and_choose(dialog: Locator) -> None:
        await page.keyboard.type(word)
        found = dialog.locator(f'[role=option][data-path="{entry}"]')
        await expect(found).to_contain_text(f"{word} drift", timeout=SLOW)  # the snippet
        await page.keyboard.press("ArrowDown")
        await expect(found).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(found).to_have_attribute("aria-selected", "true")
        await expect(dialog.locator("input[name=path]")).to_have_value(entry)
        await check_part(page, ".jp-Dialog-content", "pull-dialog", axe_script)

    async def opened_and_idle() -> None:
        """The pulled notebook is open in front with its kernel ready (it takes the focus
        meanwhile, which would close the command palette of the next pull)."""
        tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text=entry.rsplit("/", 1)[1])
        await expect(tab).to_be_visible(timeout=SLOW)
        await expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
            [re.compile(r"\| Idle")], timeout=SLOW
        )

    try:
        await log_in(page, hub, user.name)
        await start_and_watch(page, user.name)
        await reset_workspace(page, hub, user.name)

        report = await pull(search_and_choose)
        await expect(report).to_contain_text(
            f"Pulled version 1 of {entry} into {entry}.", timeout=SLOW
        )
        await report.get_by_role("button", name="Ok").click()
        await opened_and_idle()

        report = await pull(search_and_choose)
        await expect(report).to_contain_text(
            f"Already up to date: {entry} holds version 1 of {entry}.", timeout=SLOW
        )
        await report.get_by_role("button", name="Ok").click()
        await opened_and_idle()

        await push_notebook(hub, entry, runs_notebook(f"x = 2  # the {word} drift"))
        await run_command(page, "Pull from Repository")
        dialog = page.locator(".jp-Dialog")
        await search_and_choose(dialog)
        await dialog.get_by_role("button", name="Pull").click()
        mine = page.locator(".jp-Dialog", has_text=f"You already have {entry}")
        await mine.get_by_role("button", name=re.compile("^Write beside")).click()
        beside = entry.replace(".ipynb", " (2).ipynb")
        report = page.locator(".jp-Dialog-content")
        await expect(report).to_contain_text(
            f"Pulled version 2 of {entry} into {beside}, beside your {entry}, which is unchanged.",
            timeout=SLOW,
        )
        await report.get_by_role("button", name="Ok").click()
        entry_name = entry.rsplit("/", 1)[1]
        await expect(page.locator(".lm-TabBar-tab.jp-mod-current")).to_contain_text(
            entry_name.replace(".ipynb", " (2)"), timeout=SLOW
        )
        await expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
            [re.compile(r"\| Idle")], timeout=SLOW
        )

        async def type_a_wrong_path(dialog: Locator) -> None:
            await dialog.locator("input[name=path]").fill("analysis/no-such.ipynb")

        report = await pull(type_a_wrong_path)
        await expect(report).to_contain_text("Nothing was pulled:", timeout=SLOW)
        await expect(report).to_contain_text("no-such.ipynb")
        await report.get_by_role("button").first.click()
    finally:
        await leave_lab(page, hub, user.name)


def saved_without_kernel(source: str) -> bytes:
    """A notebook as JupyterLab saves it without a kernel: it opens unchanged."""
    notebook = nbformat.reads(notebook_bytes(source), as_version=4)
    notebook.metadata = {
        "kernelspec": {"name": "", "display_name": ""},
        "language_info": {"name": ""},
    }
    return nbformat.writes(notebook).encode()


async def test_overwrite_from_a_pull_replaces_the_open_tab_clean_and_a_save_keeps_it(
    hub: RunningHub, this_trees_extension: None, browser: BrowserContext
):
    """A pull that overwrites a notebook open in a tab reloads the tab from disk: it shows
    the pulled version, unmarked (closing it asks nothing), also when the tab held unsaved
    edits, so that a later save writes the pulled version, not the edits, over the pull."""
    user = await hub.add_user(f"overwriter-{secrets.token_hex(4)}", PASSWORD)
    entry = f"shared-{secrets.token_hex(3)}.ipynb"
    # pulled: notebooks as nbformat writes them, without the metadata JupyterLab adds on load
    await push_notebook(hub, entry, notebook_bytes("x = 'pulled first'"))
    async with hub.app.db.begin() as conn:
        await contents.write_file(conn, user.db_role, entry, saved_without_kernel("x = 'mine'"))
    page = await browser.new_page()
    tab = page.locator(".lm-TabBar-tab", has_text=entry)
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")

    async def pull_and_overwrite(*, warned: bool) -> None:
        await run_command(page, "Pull from Repository")
        dialog = page.locator(".jp-Dialog")
        await dialog.locator("input[name=path]").fill(entry)
        await dialog.get_by_role("button", name="Pull").click()
        mine = page.locator(".jp-Dialog", has_text=f"You already have {entry}")
        unsaved = "unsaved changes in its open tab"
        if warned:
            await expect(mine).to_contain_text(unsaved, timeout=SLOW)
        else:
            await expect(mine).not_to_contain_text(unsaved, timeout=SLOW)
        await mine.get_by_role("button", name="Overwrite").click()
        report = page.locator(".jp-Dialog-content")
        await expect(report).to_contain_text("replacing your copy", timeout=SLOW)
        await report.get_by_role("button", name="Ok").click()

    async def open_it(text: str) -> None:
        await page.locator(f'.jp-DirListing-item[title^="Name: {entry}"]').dblclick(timeout=SLOW)
        no_kernel = page.locator(".jp-Dialog").get_by_role("button", name="No Kernel", exact=True)
        await no_kernel.click(timeout=SLOW)
        await expect(notebook).to_contain_text(text, timeout=SLOW)

    async def stored() -> tuple[datetime, str]:
        async with hub.app.db.begin() as conn:
            record = await contents.read_file(conn, user.db_role, entry)
        return record.last_modified, parse_notebook(record.content).cells[0].source

    async def saved_after(pulled: datetime) -> str:
        async with asyncio.timeout(SLOW / 1000):
            while (found := await stored())[0] == pulled:
                await asyncio.sleep(0.2)
        return found[1]

    try:
        await log_in(page, hub, user.name)
        await start_and_watch(page, user.name)
        await reset_workspace(page, hub, user.name)
        await open_it("x = 'mine'")
        await expect(tab).not_to_have_class(re.compile("jp-mod-dirty"))

        await pull_and_overwrite(warned=False)
        await expect(notebook).to_contain_text("x = 'pulled first'", timeout=SLOW)
        await expect(tab).not_to_have_class(re.compile("jp-mod-dirty"))
        await tab.locator(".lm-TabBar-tabCloseIcon").click()
        await expect(tab).to_have_count(0)  # closed without asking to save
        await expect(page.locator(".jp-Dialog")).to_have_count(0)

        await open_it("x = 'pulled first'")
        await notebook.locator(".jp-Cell").first.locator(".cm-content").click(timeout=SLOW)
        await page.keyboard.press("Control+a")
        await page.keyboard.insert_text("x = 'unsaved edit'")
        await expect(tab).to_have_class(re.compile("jp-mod-dirty"))
        await push_notebook(hub, entry, notebook_bytes("x = 'pulled again'"))
        await pull_and_overwrite(warned=True)
        await expect(notebook).to_contain_text("x = 'pulled again'", timeout=SLOW)
        await expect(notebook).not_to_contain_text("unsaved edit")
        await expect(tab).not_to_have_class(re.compile("jp-mod-dirty"))
        pulled, _ = await stored()
        await notebook.locator(".jp-Cell").first.click()
        await page.keyboard.press("Control+s")
        assert await saved_after(pulled) == "x = 'pulled again'"
        await expect(page.locator(".jp-Dialog")).to_have_count(0)  # no "file changed" either
    finally:
        await leave_lab(page, hub, user.name)
