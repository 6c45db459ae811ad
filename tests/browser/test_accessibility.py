"""Every hub page, in a real browser, on a desktop screen and on a phone: a screenshot of
each is kept, and axe-core finds no serious or critical accessibility violation on any.

axe-core is the npm package (``tests/browser/axe/package.json``, installed by ``npm ci`` on
first use; without npm the test fails and says so). Screenshots land in
``test-artifacts/screenshots/`` at the top of the checkout (or ``$GILHUB_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from traitlets.config import Config

from gilhub.contents import query as contents
from tests.activity.helpers import record_story
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.hub.conftest import ADMIN_NAME, ADMIN_PASSWORD, RunningHub, running_hub
from tests.notebook_templates.helpers import push_template
from tests.repository.helpers import notebook_bytes

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

AXE_DIR = Path(__file__).parent / "axe"
VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}
BLOCKING_IMPACTS = ("serious", "critical")
NOTEBOOK = "fit.ipynb"
TEMPLATE = "some_instrument/analysis.ipynb"
EXAMPLE_BIBLIOGRAPHY = Path(__file__).parents[2] / "bibliography.bib"

#: (name, path): the pages an administrator sees, each checked at every viewport.
PAGES = [
    ("home", "/hub/home"),
    ("change-password", "/hub/change-password"),
    ("tokens", "/hub/token"),
    ("admin", "/hub/admin"),
    ("logout", "/hub/logout"),
    ("spawn", f"/hub/spawn/{ADMIN_NAME}"),
    ("spawn-log", f"/hub/spawn-log/{ADMIN_NAME}"),
    ("not-found", "/hub/no-such-page"),
    ("repo", "/hub/repo"),
    ("repo-search", "/hub/repo/search?q=fit"),
    ("repo-entry", f"/hub/repo/entry/{NOTEBOOK}"),
    ("repo-view", f"/hub/repo/view/{NOTEBOOK}"),
    ("repo-diff", f"/hub/repo/diff/{NOTEBOOK}"),
    ("repo-push", "/hub/repo/push"),
    ("repo-pull", "/hub/repo/pull"),
    ("repo-activity", "/hub/repo/activity"),
    ("repo-deleted", "/hub/repo/deleted"),
    ("bib", "/hub/bib"),
    ("bib-entry", "/hub/bib/einstein1905electrodynamics"),
    ("bib-add", "/hub/bib-add"),
    ("runs", "/hub/runs"),
    ("run-definitions", "/hub/runs/definitions"),
    ("activity", "/hub/activity"),
    ("activity-story", f"/hub/activity/{NOTEBOOK}"),
    ("templates", "/hub/templates"),
    ("template-confirm", f"/hub/templates/t/{TEMPLATE}?params=%7B%22run%22%3A%201%7D"),
    ("template-missing", "/hub/templates/t/no/such.ipynb"),
]


def artifacts_dir() -> Path:
    default = Path(__file__).parents[2] / "test-artifacts"
    directory = Path(os.environ.get("GILHUB_TEST_ARTIFACTS", default)) / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def axe_script() -> str:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm not found: the accessibility test installs axe-core with npm")
        subprocess.run(  # noqa: ASYNC221 (a module fixture, before any page is opened)
            [npm, "ci", "--no-audit", "--no-fund"], cwd=AXE_DIR, check=True, timeout=300
        )
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory) -> AsyncIterator[RunningHub]:
    """A hub with the example bibliography, two versions of one repository entry, a template,
    and the activity recorded in a notebook."""
    data_dir = tmp_path_factory.mktemp("a11y-hub")
    config = Config()
    config.LabBibliography.path = str(data_dir / "lab.bib")
    shutil.copy(EXAMPLE_BIBLIOGRAPHY, data_dir / "lab.bib")
    async with running_hub(database_url, data_dir, config) as running:
        web = await running.login(ADMIN_NAME, ADMIN_PASSWORD)
        for source in ("a = 1", "a = 2"):
            await push(running, web, source)
        await push_template(running, TEMPLATE)
        await record_story(running.app.db, await contents_owner(running), NOTEBOOK)
        yield running


async def push(hub: RunningHub, web, source: str) -> None:
    async with hub.app.db.begin() as conn:
        admin = await contents_owner(hub)
        await contents.write_file(conn, admin, NOTEBOOK, notebook_bytes(source, markdown="# Fit"))
    response = await web.post(
        "/hub/repo/push",
        data={"source": NOTEBOOK, "message": f"set {source}", "_xsrf": hub.xsrf_token(web)},
    )
    assert response.status_code == 303, response.text


async def contents_owner(hub: RunningHub) -> str:
    from gilhub.users import get_user_by_name

    async with hub.app.db.connect() as conn:
        return (await get_user_by_name(conn, ADMIN_NAME)).db_role


@pytest.fixture(scope="module")
async def admin_browser(hub: RunningHub) -> AsyncIterator[BrowserContext]:
    """One chromium for the module, logged in as the administrator through the form."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{hub.url}/hub/login")
        await page.fill("input[name=username]", ADMIN_NAME)
        await page.fill("input[name=password]", ADMIN_PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url("**/hub/home")
        await page.close()
        try:
            yield context
        finally:
            await browser.close()


async def check_page(context: BrowserContext, url: str, name: str, axe_script: str) -> list[str]:
    """Screenshots at every viewport; the serious or critical violations found, described."""
    problems = []
    page = await context.new_page()
    try:
        for viewport, (width, height) in VIEWPORTS.items():
            await page.set_viewport_size({"width": width, "height": height})
            await page.goto(url)
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(artifacts_dir() / f"{name}-{viewport}.png"))
            await page.add_script_tag(content=axe_script)
            result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            problems += [
                f"{viewport}: {v['id']} ({v['impact']}): {v['help']} at "
                + ", ".join(node["target"][0] for node in v["nodes"][:5])
                for v in result["violations"]
                if v["impact"] in BLOCKING_IMPACTS
            ]
    finally:
        await page.close()
    return problems


@pytest.mark.parametrize(("name", "path"), PAGES, ids=[name for name, _ in PAGES])
async def test_page_is_accessible_on_desktop_and_phone(
    hub: RunningHub, admin_browser: BrowserContext, axe_script: str, name: str, path: str
) -> None:
    problems = await check_page(admin_browser, hub.url + path, name, axe_script)
    assert not problems, "\n".join(problems)


async def test_a_fresh_hubs_empty_bibliography_is_accessible(
    database_url, tmp_path, admin_browser: BrowserContext, axe_script: str
) -> None:
    """A second hub on the same database (the admin's login holds) with a fresh data
    directory: the bibliography's empty state."""
    async with running_hub(database_url, tmp_path / "fresh") as fresh:
        url = f"{fresh.url}/hub/bib"
        problems = await check_page(admin_browser, url, "bib-empty", axe_script)
        page = await admin_browser.new_page()
        await page.goto(url)
        await expect(page.locator("#bib-empty-state")).to_contain_text("is empty")
        await page.close()
    assert not problems, "\n".join(problems)


async def test_login_page_is_accessible_on_desktop_and_phone(
    hub: RunningHub, axe_script: str
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context()
            problems = await check_page(context, f"{hub.url}/hub/login", "login", axe_script)
        finally:
            await browser.close()
    assert not problems, "\n".join(problems)


async def test_add_reference_form_follows_the_chosen_type(
    hub: RunningHub, admin_browser: BrowserContext
) -> None:
    page = await admin_browser.new_page()
    await page.goto(f"{hub.url}/hub/bib-add")
    await page.get_by_label("Type").select_option("phdthesis")

    await expect(page.locator('label[data-field="school"]')).to_be_visible()
    await expect(page.locator('label[data-field="journal"]')).to_be_hidden()
    await expect(page.locator('input[name="school"]')).to_have_attribute("required", "")
    await page.get_by_label("Type").select_option("book")
    await expect(page.locator('label[data-field="editor"] .one-of')).to_have_text(
        "(author or editor: one required)"
    )
    await page.close()


async def test_times_are_shown_in_the_readers_time_zone(hub: RunningHub) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(timezone_id="Asia/Kolkata", locale="en-GB")
            await context.add_cookies(await hub_cookies(hub))
            page = await context.new_page()
            await page.goto(f"{hub.url}/hub/repo/entry/{NOTEBOOK}")
            shown = page.locator("time[datetime]").first
            utc_text = await shown.get_attribute("title")
            local_text = await shown.text_content()
        finally:
            await browser.close()
    assert utc_text.endswith(" UTC")
    assert local_text != utc_text and "UTC" not in local_text


async def hub_cookies(hub: RunningHub) -> list[dict]:
    web = await hub.login(ADMIN_NAME, ADMIN_PASSWORD)
    return [{"name": c.name, "value": c.value, "url": hub.url} for c in web.cookies.jar]


async def check_part(page: Page, selector: str, name: str, axe_script: str) -> None:
    """A screenshot of the part of JupyterLab at ``selector`` (kept with the hub pages'), and
    no serious or critical accessibility violation in it (axe-core)."""
    await page.locator(selector).screenshot(path=str(artifacts_dir() / f"lab-{name}.png"))
    await page.add_script_tag(content=axe_script)
    result = await page.evaluate(
        "selector => axe.run(document.querySelector(selector), {resultTypes: ['violations']})",
        selector,
    )
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, [(v["id"], v["help"], v["nodes"][0]["target"]) for v in blocking]
