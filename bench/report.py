"""What every benchmark's report says about where it ran, and where the report goes.

A figure means little without the machine and how busy it was, so each report
names both; reports are Markdown files in ``bench/results/``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """This machine as a report names it: Python, system, processor, CPUs."""
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} CPUs"
    )


def load_average() -> str:
    """The one-minute load average (other work makes every figure noisier); "n/a" on
    systems without one (Windows)."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def write_report(name: str, text: str, directory: Path = RESULTS_DIR) -> Path:
    """Print the report and write it to ``NAME.md`` in ``directory`` (``bench/results``)."""
    print(text)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path
