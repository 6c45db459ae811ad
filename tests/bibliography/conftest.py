"""Fixtures for the bibliography tests: the real example file, generated big files."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from traitlets.config import Config

from tests.hub.conftest import ADMIN_NAME, ADMIN_PASSWORD, RunningHub, start_test_hub

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE_BIB = REPOSITORY / "bibliography.bib"


def generated_bibtex(count: int) -> str:
    """``count`` distinct, well-formed entries with LaTeX, macros and DOIs (as in the bench)."""
    people = [
        'Schr{\\"o}dinger, Erwin',
        "Einstein, Albert",
        "Noether, Emmy",
        "P{\\'e}rez, Fernando",
    ]
    parts = ['@string{prl = "Physical Review Letters"}\n']
    for i in range(count):
        parts.append(
            f"@article{{gen{i},\n  author = {{{people[i % 4]} and {people[(i + 1) % 4]}}},\n"
            f"  title = {{On the $\\alpha$ {{Q}}uantum theory, part {i}}},\n  journal = prl,\n"
            f"  year = {{{1900 + i % 120}}},\n  volume = {{{i % 90}}},\n"
            f"  pages = {{{i}--{i + 9}}},\n"
            f"  doi = {{10.1000/gen.{i}}}\n}}\n\n"
        )
    return "".join(parts)


@pytest.fixture
def bib_copy(tmp_path: Path) -> Path:
    """A private copy of the repository's example bibliography."""
    path = tmp_path / "bibliography.bib"
    shutil.copyfile(EXAMPLE_BIB, path)
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle``."""
    return text[: text.index(needle)].count("\n") + 1


@asynccontextmanager
async def hub_with_bibliography(
    database_url: URL, data_dir: Path, bib_path: Path
) -> AsyncIterator[RunningHub]:
    """A real running hub (tests/hub/conftest.py) whose lab bibliography is ``bib_path``."""
    config = Config()
    config.LabBibliography.path = str(bib_path)
    app = await start_test_hub(database_url, data_dir, config)
    running = RunningHub(app=app, url=f"http://127.0.0.1:{app.bound_port}")
    try:
        await running.add_user(ADMIN_NAME, ADMIN_PASSWORD, admin=True)
        yield running
    finally:
        await running.close_clients()
        if app.servers is not None:
            app.servers.cleanup_servers = True
        await app.stop_hub()
