"""Bibliography benchmark: a generated 20,000-entry BibTeX file.

Measures, in one process, the code paths the hub's handlers run, and then the same requests
over HTTP through a running hub (with an API token):

- first load (read + parse + search index, stored in PostgreSQL), a second load (unchanged
  file: stat only), and the load after a restart (the parsed version read from PostgreSQL);
- a search (free text + author + year filters, then sorted);
- a page of 50 formatted entries (search + LaTeX decoding + HTML, entries never formatted before);
- one entry's tooltip (lookup + formatted HTML, an entry never formatted before);
- re-rendering a notebook with 100 citations (the nbconvert preprocessor alone, and a full
  HTML export with it).

Run from a checkout: ``python bench/bib_bench.py`` (prints a table and writes
``bench/results/bib.md``). Goals (issue 5): search and a page under 100 ms, a tooltip under
20 ms, the first load under 5 s and not repeated until the file changes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nbformat
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from sqlalchemy.engine import URL
from traitlets.config import Config

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.report import load_average, machine, markdown_table, write_report  # noqa: E402
from bench.scratch_db import scratch_database  # noqa: E402
from gilhub.accounts import create_account  # noqa: E402
from gilhub.auth.tokens import create_token  # noqa: E402
from gilhub.bibliography.cache import PostgresParseCache  # noqa: E402
from gilhub.bibliography.format import format_entry_html  # noqa: E402
from gilhub.bibliography.library import Bibliography  # noqa: E402
from gilhub.bibliography.preprocessor import CitationPreprocessor  # noqa: E402
from gilhub.bibliography.search import Query  # noqa: E402
from tests.bibliography.conftest import generated_bibtex  # noqa: E402
from tests.hub.conftest import start_test_hub  # noqa: E402

ENTRIES = 20_000
REPEATS = 20


def timed(function: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float, float]:
    """Median and maximum wall time, and median CPU time of the process, in milliseconds.

    The CPU time does not grow when other programs share the machine; the wall time does.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        function()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu_start) * 1000)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def row(name: str, times: tuple[float, float, float], goal: str, digits: int = 1) -> tuple:
    median, worst, cpu = times
    return (name, f"{median:.{digits}f} ms", f"{worst:.{digits}f} ms", f"{cpu:.{digits}f} ms", goal)


def notebook_with_citations(keys: list[str], count: int = 100) -> nbformat.NotebookNode:
    forms = ["[@{}]", "\\citep[p.~5]{{{}}}", "\\citet{{{}}}", "[see @{}, p. 3]", "{{cite}}`{}`"]
    cells = []
    for i in range(count // 5):
        sentences = [forms[j].format(keys[(i * 5 + j) * 37 % len(keys)]) for j in range(5)]
        cells.append(new_markdown_cell("Results agree with " + ", ".join(sentences) + "."))
        cells.append(new_code_cell(f"x = {i}  # mail me at someone@example.org"))
    return new_notebook(cells=cells)


async def main() -> None:
    async with scratch_database() as scratch:
        rows = await measure(scratch.directory, PostgresParseCache(scratch.engine))
        rows += await measure_http(scratch.directory, scratch.url)
    report(rows)


async def measure(scratch: Path, cache: PostgresParseCache) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    path = scratch / "big.bib"
    path.write_text(generated_bibtex(ENTRIES), encoding="utf-8")
    bibliography = Bibliography(path, cache)

    start, cpu_start = time.perf_counter(), time.process_time()
    library = await bibliography.library()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rows.append(
        (
            "first load (read, parse, index, store in PostgreSQL)",
            f"{wall * 1000:.0f} ms",
            "",
            f"{cpu * 1000:.0f} ms",
            "< 5 s",
        )
    )

    start = time.perf_counter()
    for _ in range(1000):
        await bibliography.library()
    again = time.perf_counter() - start  # seconds per 1000 = ms per call
    assert bibliography.parse_count == 1, "the file was parsed again without a change"
    rows.append(
        ("load again, file unchanged (stat only)", f"{again:.3f} ms", "", "", "no re-parse")
    )

    restarted = Bibliography(path, cache)
    start, cpu_start = time.perf_counter(), time.process_time()
    await restarted.library()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert restarted.parse_count == 0, "the restarted hub parsed the unchanged file again"
    rows.append(
        (
            "load after a restart (parsed version from PostgreSQL)",
            f"{wall * 1000:.0f} ms",
            "",
            f"{cpu * 1000:.0f} ms",
            "no re-parse",
        )
    )

    query = Query(text="quantum theory", author="noether", year="1950-1990", sort="year")
    times = timed(lambda: library.index.search(query))
    rows.append(row("search (text + author + years, sorted)", times, "< 100 ms"))

    pages = iter(range(1, ENTRIES // 50))

    def page_of_50() -> None:
        page = library.index.search(Query(sort="title", page=next(pages), per_page=50))
        for entry in page.entries:
            format_entry_html(entry)

    rows.append(row("page of 50 formatted entries", timed(page_of_50), "< 100 ms"))

    keys = list(library.entries)
    random.seed(5)
    fresh = iter(random.sample(keys, REPEATS * 2))
    times = timed(lambda: format_entry_html(library.entries[next(fresh)]))
    rows.append(row("one tooltip (formatted entry)", times, "< 20 ms", digits=2))

    nb = notebook_with_citations(keys)
    preprocessor = CitationPreprocessor(library=library)
    times = timed(lambda: preprocessor.preprocess(nbformat.from_dict(nb), {}), repeats=10)
    rows.append(row("notebook with 100 citations: links + references", times, ""))
    exporter = HTMLExporter()
    exporter.register_preprocessor(preprocessor, True)
    times = timed(lambda: exporter.from_notebook_node(nb), repeats=5)
    rows.append(row("same notebook, full nbconvert HTML export", times, "", digits=0))
    return rows


async def timed_http(client: httpx.AsyncClient, urls: Iterator[str], repeats: int = REPEATS):
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = await client.get(next(urls))
        walls.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return statistics.median(walls), max(walls)


async def measure_http(scratch: Path, database_url: URL) -> list[tuple[str, ...]]:
    """The same through a running hub, over HTTP with an API token (what a browser waits for)."""
    config = Config()
    config.LabBibliography.path = str(scratch / "big.bib")
    hub = await start_test_hub(database_url, scratch / "hub", config)
    try:
        async with hub.db.begin() as conn:
            user = await create_account(conn, "bench")
            token = (await create_token(conn, user.id, note="bench")).token
        headers = {"Authorization": f"token {token}"}
        base = f"http://127.0.0.1:{hub.bound_port}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            (await client.get("/hub/api/bib", params={"per_page": 1})).raise_for_status()
            pages = (f"/hub/bib?sort=year&page={n}" for n in itertools.count(7))
            searches = itertools.repeat(
                "/hub/api/bib?q=quantum+theory&author=noether&year=1950-1990"
            )
            keys = (f"/hub/api/bib/gen{n}?format=html" for n in itertools.count(9001, 7))
            rows = []
            for name, urls, goal in (
                ("HTTP: search (JSON)", searches, "< 100 ms"),
                ("HTTP: /hub/bib page of 50 entries", pages, "< 100 ms"),
                ("HTTP: one tooltip (?format=html)", keys, "< 20 ms"),
            ):
                median, worst = await timed_http(client, urls)
                rows.append((name, f"{median:.1f} ms", f"{worst:.1f} ms", "", goal))
            return rows
    finally:
        await hub.stop_hub()


def report(rows: list[tuple[str, ...]]) -> None:
    head = ("measurement", "wall, median", "wall, worst", "CPU, median", "goal")
    write_report(
        "bib",
        f"# Bibliography benchmark\n\n{ENTRIES:,} generated entries (`python bench/bib_bench.py`;"
        f" {machine()}, load average {load_average()} at the end;"
        f" {REPEATS} repeats, 10 for the notebook, 5 for the export).\n\n"
        f"{markdown_table(head, rows)}\n",
    )


if __name__ == "__main__":
    asyncio.run(main())
