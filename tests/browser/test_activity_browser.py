"""The activity record's front end in a real browser (issue 13), in JupyterLab and Notebook 7.

Running cells makes gilhub's extension POST the executions (and the notebook's open and
save) to ``/user/NAME/gilhub/activity``; the question in the answer appears beside its
cell, and the reply goes to ``…/activity/answers``. The Notebook Story panel shows what
``/hub/api/activity`` tells. The browser's requests to those three addresses are observed
and answered here (Playwright's routing), so the test shows the front end's half of the
contract in ACTIVITY_API.md on its own; everything else is the real hub, a real user
server with this tree's build of the extension, and a real kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable

import nbformat
import pytest
from playwright.async_api import BrowserContext, Locator, Page, Route, expect
from sqlalchemy import func, select
from traitlets.config import Config

from gilhub.activity.schema import notebook_events
from gilhub.contents import query as contents
from gilhub.schema import users
from tests.browser.test_hub_browser import PASSWORD, SLOW, log_in, start_and_watch
from tests.hub.conftest import RunningHub, running_hub
from tests.hub.conftest import hub as hub  # the fixture, for this module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "story.ipynb"
QUESTION = "What are you trying to find out in this cell?"
ANSWER = "whether 41 and 1 make the answer"
LATER_QUESTION = "And this one?"


def code_notebook(**sources: str) -> bytes:
    """A Python notebook of code cells, given as id=source."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source, id=id) for id, source in sources.items()]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    return nbformat.writes(notebook).encode()


def story_notebook() -> bytes:
    """Two code cells with known ids: one that prints, one that fails."""
    return code_notebook(prints="x = 41\nprint(x + 1)", fails="1 / 0")


@contextlib.asynccontextmanager
async def person_with(hub: RunningHub, notebooks: dict[str, bytes]) -> AsyncIterator[str]:
    """A new user (a random name: JupyterLab keeps workspaces, open tabs, per URL across
    test runs) with ``notebooks`` (by path) in their storage; their server stopped after."""
    person = await hub.add_user(f"ada-{secrets.token_hex(4)}", PASSWORD)
    async with hub.app.db.begin() as conn:
        for path, notebook in notebooks.items():
            await contents.write_file(conn, person.db_role, path, notebook)
    try:
        yield person.name
    finally:
        token = await hub.token_for(person.name)
        async with hub.client(headers={"Authorization": f"token {token}"}) as api:
            await api.delete(f"/hub/api/users/{person.name}/server")


def prompt(prompt_id: str, cell_id: str, question: str) -> dict:
    return {
        "prompt_id": prompt_id,
        "path": NOTEBOOK,
        "cell_id": cell_id,
        "cell_version": "0" * 64,
        "question": question,
    }


STORY = {
    "path": NOTEBOOK,
    "sessions": [{"start": "2026-11-29T09:00:00Z", "end": "2026-11-29T09:20:00Z", "executions": 3}],
    "cells": [
        {
            "cell_id": "prints",
            "versions": [
                {
                    "cell_version": "a",
                    "source": "x = 40",
                    "first_run": "2026-11-29T09:00:00Z",
                    "diff": "",
                },
                {
                    "cell_version": "b",
                    "source": "x = 41",
                    "first_run": "2026-11-29T09:10:00Z",
                    "diff": "@@ -1 +1 @@\n-x = 40\n+x = 41\n",
                },
            ],
            "executions": [],
            "fixes": [
                {
                    "error": {"ename": "NameError", "evalue": "name 'y'", "cell_version": "a"},
                    "fixed_by": "b",
                }
            ],
            "answers": [{"cell_version": "b", "answer": ANSWER, "time": "2026-11-29T09:11:00Z"}],
        }
    ],
}


class FakeActivityServer:
    """Answers the extension's activity calls as the contract says, and keeps what came."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.answers: list[dict] = []
        self.asked = False

    async def activity(self, route: Route) -> None:
        events = route.request.post_data_json["events"]
        self.events.extend(events)
        first_run = [e for e in events if e["type"] == "execution" and e["cell_id"] == "prints"]
        prompts = [prompt("p-1", "prints", QUESTION)] if first_run and not self.asked else []
        self.asked = self.asked or bool(prompts)
        await route.fulfill(json={"enabled": True, "mode": "continuous", "prompts": prompts})

    async def ask(self, route: Route) -> None:
        assert route.request.method == "POST"
        prompts = [prompt("p-2", "fails", LATER_QUESTION)]
        await route.fulfill(json={"enabled": True, "mode": "end", "prompts": prompts})

    async def answer(self, route: Route) -> None:
        self.answers.extend(route.request.post_data_json["answers"])
        await route.fulfill(json={"stored": 1})

    async def story(self, route: Route) -> None:
        await route.fulfill(json=STORY)

    async def install(self, browser: BrowserContext, name: str) -> None:
        server = rf"/user/{name}/gilhub/activity"
        cache_buster = r"(\?\d+)?$"  # JupyterLab's requests to its server carry one
        await browser.route(re.compile(server + cache_buster), self.activity)
        await browser.route(re.compile(server + r"/ask\?path=story\.ipynb"), self.ask)
        await browser.route(re.compile(server + "/answers" + cache_buster), self.answer)
        await browser.route(re.compile(r"/hub/api/activity\?path=story\.ipynb$"), self.story)

    async def arrived(self, wanted: Callable[[dict], bool], after: int = 0) -> dict:
        """The first event ``wanted`` accepts among those from number ``after`` on, once
        the extension has sent it (batches go every few seconds)."""
        async with asyncio.timeout(60):
            while True:
                found = [event for event in self.events[after:] if wanted(event)]
                if found:
                    return found[0]
                await asyncio.sleep(0.2)


def execution_of(cell_id: str) -> Callable[[dict], bool]:
    return lambda e: e["type"] == "execution" and e["cell_id"] == cell_id


def assert_execution_fields(event: dict, source: str) -> None:
    assert event["path"] == NOTEBOOK
    assert event["source"] == source
    assert event["execution_count"] >= 1
    assert event["started"] <= event["ended"]  # both ISO 8601 in UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["started"])
    assert re.fullmatch(r"[0-9a-f]{64}", event["output_hash"])


async def start_kernel(hub: RunningHub, name: str, path: str = NOTEBOOK) -> None:
    """The notebook's kernel, started before JupyterLab opens it (which then connects to it
    instead of asking which kernel to start while one may be starting)."""
    token = await hub.token_for(name)
    async with hub.client(headers={"Authorization": f"token {token}"}) as api:
        session = {"path": path, "type": "notebook", "kernel": {"name": "python3"}}
        response = await api.post(f"/user/{name}/api/sessions", json=session)
        assert response.status_code == 201, response.text


async def run_until_shown(page: Page, cell: Locator, text: str) -> None:
    """Run the cell until its output shows ``text``. Right after a notebook opens on a busy
    machine, JupyterLab may not be connected to the kernel yet; a cell "run" then is only
    cleared (and not recorded: it did not run), or JupyterLab asks which kernel to start."""
    for _ in range(5):
        await kernel_ready(page)  # JupyterLab asks which kernel if it has none after all
        await cell.locator(".jp-InputPrompt").click()
        await page.keyboard.press("Control+Enter")
        try:
            await expect(cell.locator(".jp-OutputArea-output")).to_contain_text(text)
            return
        except AssertionError:
            continue
    await expect(cell.locator(".jp-OutputArea-output")).to_contain_text(text, timeout=SLOW)


async def from_menu(page: Page, menu: str, item: str) -> None:
    """A menu item (steadier than the palette, whose list is redrawn as the kernel's
    state changes)."""
    await page.locator(".lm-MenuBar-item", has_text=menu).click()
    await page.locator(".lm-Menu-item:visible", has_text=re.compile(f"^{item}")).click()


async def logged_in_page(browser: BrowserContext, hub: RunningHub, name: str) -> Page:
    """A new page in which ``name`` has logged in and watched their server start."""
    page = await browser.new_page()
    await log_in(page, hub, name)
    await start_and_watch(page, name)
    return page


async def open_from_file_browser(page: Page, path: str) -> None:
    await page.locator(f'.jp-DirListing-item[title^="Name: {path}"]').dblclick(timeout=SLOW)


async def kernel_ready(page: Page) -> None:
    """The notebook's kernel is idle (JupyterLab may first ask which kernel: Python 3)."""
    idle = page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    await expect(idle.or_(choose)).to_be_visible(timeout=SLOW)
    if await choose.is_visible():
        await choose.click()
    await expect(idle).to_be_visible(timeout=SLOW)


async def answer_the_question(page: Page, server: FakeActivityServer) -> None:
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").first
    question = cell.get_by_role("region", name="A question about this cell")
    await expect(question).to_be_visible(timeout=SLOW)
    field = question.get_by_label(QUESTION)
    await field.fill(ANSWER)
    await field.press("Control+Enter")  # the panel's keyboard submit, not "run cell"
    await expect(question).to_have_count(0)
    assert server.answers == [{"prompt_id": "p-1", "answer": ANSWER}]


async def story_panel_asks_and_tells(page: Page, server: FakeActivityServer) -> None:
    await from_menu(page, "View", "Notebook Story")
    story = page.get_by_role("region", name="Notebook Story")
    await expect(story.locator(".gilhub-story-answer")).to_have_text(ANSWER, timeout=SLOW)
    await story.locator("summary", has_text="Version 2").click()
    await expect(story.locator(".gilhub-story-added")).to_have_text("+x = 41")
    await expect(story.locator(".gilhub-story-removed")).to_have_text("-x = 40")
    await expect(story.locator(".gilhub-story-fixes")).to_contain_text(
        "NameError: name 'y' (version 1), fixed by version 2"
    )
    export = story.get_by_role("link", name="Export Markdown")
    await expect(export).to_have_attribute(
        "href", re.compile(r"/hub/api/activity/export\?path=story\.ipynb&format=markdown$")
    )
    await expect(story.get_by_role("link", name="Open on the hub")).to_have_attribute(
        "href", re.compile(r"/hub/activity/story\.ipynb$")
    )

    await story.get_by_role("button", name="Ask me now").click()
    failing = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").nth(1)
    later = failing.get_by_role("region", name="A question about this cell")
    await expect(later).to_contain_text(LATER_QUESTION)
    await later.get_by_role("button", name="Don\u2019t ask in this notebook").click()
    await expect(later).to_have_count(0)
    assert server.answers[-1] == {"prompt_id": "p-2", "dont_ask_in_notebook": True}


@pytest.fixture
async def writer(hub: RunningHub) -> AsyncIterator[str]:
    """A user with the story notebook (ask for this before ``browser``, so that a failure's
    screenshots come before the server stops)."""
    async with person_with(hub, {NOTEBOOK: story_notebook()}) as name:
        yield name


async def test_executions_posted_question_answered_story_shown_in_lab_and_notebook7(
    hub: RunningHub, this_trees_extension: None, writer: str, browser: BrowserContext
):
    name = writer
    server = FakeActivityServer()
    await server.install(browser, name)
    page = await logged_in_page(browser, hub, name)
    await start_kernel(hub, name)
    await open_from_file_browser(page, NOTEBOOK)
    cells = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
    await expect(cells).to_have_count(2, timeout=SLOW)
    await kernel_ready(page)
    # one cell after the other, each seen done (a busy machine makes Run All racy)
    await run_until_shown(page, cells.first, "42")
    await run_until_shown(page, cells.nth(1), "ZeroDivisionError")

    printed = await server.arrived(execution_of("prints"))
    assert_execution_fields(printed, "x = 41\nprint(x + 1)")
    assert printed["status"] == "ok" and "ename" not in printed
    failed = await server.arrived(execution_of("fails"))
    assert_execution_fields(failed, "1 / 0")
    assert (failed["status"], failed["ename"], failed["evalue"]) == (
        "error",
        "ZeroDivisionError",
        "division by zero",
    )
    assert failed["started"] >= printed["ended"]
    await server.arrived(lambda e: e["type"] == "open" and e["path"] == NOTEBOOK)

    await answer_the_question(page, server)
    await cells.first.locator(".jp-InputPrompt").click()
    await page.keyboard.press("Control+s")
    await server.arrived(lambda e: e["type"] == "save" and e["path"] == NOTEBOOK)
    await story_panel_asks_and_tells(page, server)

    # Notebook 7 runs the same extension: its executions are recorded too.
    seen = len(server.events)
    classic = await browser.new_page()
    await classic.goto(f"{hub.url}/user/{name}/notebooks/{NOTEBOOK}")
    page_config = json.loads(await classic.locator("#jupyter-config-data").text_content())
    assert page_config["token"] == "", "the server's token stays out of the page"
    await run_until_shown(classic, classic.locator(".jp-Notebook .jp-CodeCell").first, "42")
    await server.arrived(lambda e: e["type"] == "open", after=seen)
    again = await server.arrived(execution_of("prints"), after=seen)
    assert_execution_fields(again, "x = 41\nprint(x + 1)")


class EndModeServer(FakeActivityServer):
    """Asks as the "end" mode does: about the notebook's cells when it is closed."""

    async def activity(self, route: Route) -> None:
        events = route.request.post_data_json["events"]
        self.events.extend(events)
        closed = any(e["type"] == "close" and e["path"] == NOTEBOOK for e in events)
        prompts = [prompt("p-end", "prints", QUESTION)] if closed else []
        await route.fulfill(json={"enabled": True, "mode": "end", "prompts": prompts})


async def test_questions_due_when_a_notebook_is_closed_are_offered_then_and_answered_closed(
    hub: RunningHub, this_trees_extension: None, writer: str, browser: BrowserContext
):
    """End mode asks when a notebook is closed: a notification offers the question at once
    (not when the notebook is next opened), and it is answered in a side panel, beside the
    cell's source, without opening the notebook again."""
    name = writer
    server = EndModeServer()
    await server.install(browser, name)
    page = await logged_in_page(browser, hub, name)
    await open_from_file_browser(page, NOTEBOOK)
    await kernel_ready(page)
    await server.arrived(lambda e: e["type"] == "open" and e["path"] == NOTEBOOK)
    tab = page.locator(".lm-TabBar-tab", has_text=NOTEBOOK)
    await page.locator(".jp-NotebookPanel:visible .jp-InputPrompt").first.click()
    await page.keyboard.press("Control+s")  # the kernel's name is written: closing asks nothing
    await expect(tab).not_to_have_class(re.compile("jp-mod-dirty"), timeout=SLOW)
    await tab.locator(".lm-TabBar-tabCloseIcon").click()
    await expect(tab).to_have_count(0)

    offer = page.locator(".Toastify__toast", has_text=f"You closed {NOTEBOOK}")
    await expect(offer).to_contain_text("a question about what you were trying to do")
    await offer.get_by_role("button", name="Answer now").click()
    questions = page.get_by_role("region", name="Questions about closed notebooks")
    await expect(questions.locator("pre")).to_have_text("x = 41")  # the cell, from its story
    question = questions.get_by_role("region", name="A question about this cell")
    field = question.get_by_label(QUESTION)
    await expect(field).to_be_focused()
    await field.fill(ANSWER)
    await field.press("Control+Enter")
    await expect(question).to_have_count(0)
    await expect(questions).to_contain_text(f"Nothing more to ask about {NOTEBOOK}")
    assert server.answers == [{"prompt_id": "p-end", "answer": ANSWER}]
    await expect(tab).to_have_count(0)  # answered without opening the notebook again


FIX_NOTEBOOK = "fix.ipynb"


@pytest.fixture(scope="module")
async def recording_hub(database_url, tmp_path_factory) -> AsyncIterator[RunningHub]:
    """A hub whose site records activity and asks while people work."""
    config = Config()
    config.Activity.enabled = True
    config.Activity.mode = "continuous"
    async with running_hub(database_url, tmp_path_factory.mktemp("recording"), config) as hub:
        yield hub


@pytest.fixture
async def fixer(recording_hub: RunningHub) -> AsyncIterator[str]:
    """A user of the recording hub with a notebook of one failing cell (ask for this before
    ``browser``)."""
    async with person_with(recording_hub, {FIX_NOTEBOOK: code_notebook(divide="1 / 0")}) as name:
        yield name


async def test_an_error_fixed_is_asked_about_and_told_in_the_story(
    recording_hub: RunningHub, this_trees_extension: None, fixer: str, browser: BrowserContext
):
    """The whole way, nothing answered by the test: the extension, the server extension's
    rules and storage, and the hub's narrative."""
    hub, name = recording_hub, fixer
    page = await logged_in_page(browser, hub, name)
    await start_kernel(hub, name, FIX_NOTEBOOK)
    await open_from_file_browser(page, FIX_NOTEBOOK)
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").first
    await kernel_ready(page)
    output = cell.locator(".jp-OutputArea-output")
    await run_until_shown(page, cell, "ZeroDivisionError")

    await cell.locator(".cm-content").click()
    await page.keyboard.press("Control+a")
    await page.keyboard.insert_text("1 / 1")
    await page.keyboard.press("Shift+Enter")
    await expect(output).to_have_text("1.0", timeout=SLOW)

    question = cell.get_by_role("region", name="A question about this cell")
    await expect(question).to_be_visible(timeout=SLOW)  # the next batch's answer asks
    await question.get_by_role("textbox").fill("dividing by something that is not zero")
    await question.get_by_role("button", name="Submit").click()
    await expect(question).to_have_count(0)

    await from_menu(page, "View", "Notebook Story")
    story = page.get_by_role("region", name="Notebook Story")
    await expect(story.locator(".gilhub-story-answer")).to_have_text(
        "dividing by something that is not zero", timeout=SLOW
    )
    await story.locator("summary", has_text="Version 2").click()
    await expect(story.locator(".gilhub-story-removed")).to_have_text("-1 / 0")
    await expect(story.locator(".gilhub-story-added")).to_have_text("+1 / 1")
    await expect(story.locator(".gilhub-story-fixes")).to_contain_text(
        "ZeroDivisionError: division by zero (version 1), fixed by version 2"
    )


async def notebook_event_stored(hub: RunningHub, name: str, kind: str, path: str) -> None:
    """Wait until the user's server has stored a ``kind`` event of ``path``."""
    async with asyncio.timeout(SLOW / 1000):
        while True:
            async with hub.app.db.connect() as conn:
                found = await conn.execute(
                    select(func.count())
                    .select_from(notebook_events)
                    .join(users, users.c.db_role == notebook_events.c.owner)
                    .where(users.c.name == name, notebook_events.c.kind == kind)
                    .where(notebook_events.c.path == path)
                )
            if found.scalar_one():
                return
            await asyncio.sleep(0.5)


async def test_a_notebook_7_page_closing_closes_its_notebook_in_the_record(
    recording_hub: RunningHub, this_trees_extension: None, fixer: str, browser: BrowserContext
):
    """Notebook 7's notebook closes with its page, and its panel is never disposed: the close
    is recorded as the page goes (in "end" mode the questions it brings are asked at the
    next open), by the real server extension."""
    hub, name = recording_hub, fixer
    page = await logged_in_page(browser, hub, name)
    await page.goto(f"{hub.url}/user/{name}/notebooks/{FIX_NOTEBOOK}")
    await expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(1, timeout=SLOW)
    await notebook_event_stored(hub, name, "open", FIX_NOTEBOOK)
    await page.goto(f"{hub.url}/hub/home")
    await notebook_event_stored(hub, name, "close", FIX_NOTEBOOK)


SECOND_NOTEBOOK = "second.ipynb"


@pytest.fixture
async def juggler(recording_hub: RunningHub) -> AsyncIterator[str]:
    """A user of the recording hub with two notebooks (ask for this before ``browser``)."""
    notebooks = {FIX_NOTEBOOK: code_notebook(divide="1 / 0"), SECOND_NOTEBOOK: code_notebook()}
    async with person_with(recording_hub, notebooks) as name:
        yield name


async def test_a_jupyterlab_page_going_away_closes_each_of_its_notebooks_in_the_record(
    recording_hub: RunningHub, this_trees_extension: None, juggler: str, browser: BrowserContext
):
    """Reloading or closing JupyterLab disposes none of its notebook panels: each notebook
    open in it is recorded closed as the page goes (or its session would never end), by
    the real server extension."""
    hub, name = recording_hub, juggler
    page = await logged_in_page(browser, hub, name)
    for path in (FIX_NOTEBOOK, SECOND_NOTEBOOK):
        await open_from_file_browser(page, path)
        await notebook_event_stored(hub, name, "open", path)
    await expect(page.locator(".jp-NotebookPanel")).to_have_count(2)
    await page.reload()
    for path in (FIX_NOTEBOOK, SECOND_NOTEBOOK):
        await notebook_event_stored(hub, name, "close", path)
