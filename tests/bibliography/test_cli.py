"""``gilhub bib check`` and ``gilhub bib add``, run as a person would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.bibliography.library import parse_bibliography


def gilhub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from gilhub.app import main; main()", *args]
    return subprocess.run(
        [*command, "--config", str(config)], capture_output=True, text=True, timeout=120
    )


def write_config(tmp_path: Path, bib: Path, database_url: URL | None = None) -> Path:
    config = tmp_path / "gilhub_config.py"
    lines = [f"c.LabBibliography.path = {str(bib)!r}", f"c.GilHub.data_dir = {str(tmp_path)!r}"]
    if database_url is not None:
        url = database_url.render_as_string(hide_password=False)
        lines.append(f"c.GilHub.db_url = {url!r}")
    config.write_text("\n".join(lines) + "\n")
    return config


def test_check_lists_problems_with_line_numbers(tmp_path: Path, bib_copy: Path):
    result = gilhub(write_config(tmp_path, bib_copy), "bib", "check")
    assert result.returncode == 1, result.stderr
    assert "4 problems" in result.stdout
    assert "bibliography.bib:744: parse-error" in result.stdout
    clean = tmp_path / "clean.bib"
    clean.write_text("@misc{fine, title={Fine}}\n")
    result = gilhub(write_config(tmp_path, clean), "bib", "check")
    assert result.returncode == 0 and "1 entries, 0 problems" in result.stdout


async def test_add_merges_and_records(
    tmp_path: Path, bib_copy: Path, database_url: URL, engine: AsyncEngine
):
    new = tmp_path / "new.bib"
    new.write_text(
        "@misc{cli2026, title={From the command line}}\n"
        "@article{higgs1964broken, title={Not replaced}, year={1964}}\n"
    )
    result = gilhub(write_config(tmp_path, bib_copy, database_url), "bib", "add", str(new))
    assert result.returncode == 1, result.stderr  # a key was taken
    assert "added: cli2026" in result.stdout and "higgs1964broken" in result.stdout
    entries = parse_bibliography(bib_copy.read_bytes()).entries
    assert "cli2026" in entries
    assert entries["higgs1964broken"].fields["title"].startswith("Broken Symmetries")
    async with engine.connect() as conn:
        source = await conn.scalar(
            text("SELECT source FROM bibliography.changes WHERE entry_key = 'cli2026'")
        )
    assert source == "cli"
