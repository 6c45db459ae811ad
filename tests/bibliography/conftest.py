"""Fixtures for the bibliography tests: the real example file, generated big files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
