"""A real browser for the browser tests: Playwright driving Debian's chromium.

Playwright's own browser downloads are never used (no ``playwright install``): the tests
launch the system's chromium with a fresh profile. Without that browser the tests fail
with a clear message; they never skip. A failing test leaves a screenshot of every open
page in its pytest temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = Path(os.environ.get("GILHUB_TEST_CHROMIUM", "/usr/bin/chromium"))
BUILT_EXTENSION = Path(__file__).resolve().parents[2] / "gilhub" / "labextension"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Remember each phase's report on the item, so fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def browser(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A chromium browser context with a fresh profile (screenshots kept on failure)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the browser test needs Debian's chromium "
            "(apt-get install chromium) or GILHUB_TEST_CHROMIUM set to a chromium binary"
        )
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            call_report = getattr(request.node, "report_call", None)
            if call_report is None or call_report.failed:
                await save_screenshots(context, tmp_path)
            await context.close()


async def save_screenshots(context: BrowserContext, directory: Path) -> None:
    for number, page in enumerate(context.pages):
        if page.url == "about:blank":  # the persistent context's empty first tab
            continue
        path = directory / f"failure-{number}.png"
        try:
            await page.screenshot(path=str(path))
        except Exception as error:  # a crashed page cannot be photographed; say so
            print(f"no screenshot of page {number} ({page.url}): {error}")
        else:
            print(f"screenshot of {page.url}: {path}")


@pytest.fixture
def this_trees_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """User servers started now load gilhub-lab as built in this tree, not an installed copy
    (JupyterLab takes the first gilhub-lab on its path, and JUPYTER_PATH comes first). The
    copy lies in the checkout's (ignored) test-artifacts, not /tmp: a sandboxed server has a
    /tmp of its own."""
    jupyter_path = BUILT_EXTENSION.parents[1] / "test-artifacts" / "jupyter-path"
    shutil.rmtree(jupyter_path, ignore_errors=True)
    shutil.copytree(BUILT_EXTENSION, jupyter_path / "labextensions" / "gilhub-lab")
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
