"""Bibliography benchmark: a generated 20,000-entry BibTeX file.

Measures, in one process, the code paths the hub's handlers run:

- first load (read + parse + search index) and a second load (unchanged file: stat only);
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
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from gilhub.bibliography.format import format_entry_html  # noqa: E402
from gilhub.bibliography.library import Bibliography  # noqa: E402
from gilhub.bibliography.preprocessor import CitationPreprocessor  # noqa: E402
from gilhub.bibliography.search import Query  # noqa: E402
from tests.bibliography.conftest import generated_bibtex  # noqa: E402

ENTRIES = 20_000
REPEATS = 20


def timed(function: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """Median and maximum wall time in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def notebook_with_citations(keys: list[str], count: int = 100) -> nbformat.NotebookNode:
    forms = ["[@{}]", "\\citep[p.~5]{{{}}}", "\\citet{{{}}}", "[see @{}, p. 3]", "{{cite}}`{}`"]
    cells = []
    for i in range(count // 5):
        sentences = [forms[j].format(keys[(i * 5 + j) * 37 % len(keys)]) for j in range(5)]
        cells.append(new_markdown_cell("Results agree with " + ", ".join(sentences) + "."))
        cells.append(new_code_cell(f"x = {i}  # mail me at someone@example.org"))
    return new_notebook(cells=cells)


async def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "big.bib"
        path.write_text(generated_bibtex(ENTRIES), encoding="utf-8")
        bibliography = Bibliography(path)

        start = time.perf_counter()
        library = await bibliography.library()
        first_load = time.perf_counter() - start
        rows.append(("first load (read, parse, index)", f"{first_load * 1000:.0f} ms", "", "< 5 s"))

        start = time.perf_counter()
        for _ in range(100):
            await bibliography.library()
        again = (time.perf_counter() - start) * 10
        assert bibliography.parse_count == 1, "the file was parsed again without a change"
        rows.append(("load again, file unchanged (stat only)", f"{again:.2f} ms", "", "no re-parse"))

        query = Query(text="quantum theory", author="noether", year="1950-1990", sort="year")
        median, worst = timed(lambda: library.index.search(query))
        rows.append(("search (text + author + years, sorted)", f"{median:.1f} ms", f"{worst:.1f} ms",
                     "< 100 ms"))

        pages = iter(range(1, ENTRIES // 50))

        def page_of_50() -> None:
            page = library.index.search(Query(sort="title", page=next(pages), per_page=50))
            for entry in page.entries:
                format_entry_html(entry)

        median, worst = timed(page_of_50)
        rows.append(("page of 50 formatted entries", f"{median:.1f} ms", f"{worst:.1f} ms",
                     "< 100 ms"))

        keys = list(library.entries)
        random.seed(5)
        fresh = iter(random.sample(keys, REPEATS * 2))
        median, worst = timed(lambda: format_entry_html(library.entries[next(fresh)]))
        rows.append(("one tooltip (formatted entry)", f"{median:.2f} ms", f"{worst:.2f} ms",
                     "< 20 ms"))

        nb = notebook_with_citations(keys)
        preprocessor = CitationPreprocessor(library=library)
        median, worst = timed(
            lambda: preprocessor.preprocess(nbformat.from_dict(nb), {}), repeats=10
        )
        rows.append(("notebook with 100 citations: links + references", f"{median:.1f} ms",
                     f"{worst:.1f} ms", ""))
        exporter = HTMLExporter()
        exporter.register_preprocessor(preprocessor, True)
        median, worst = timed(lambda: exporter.from_notebook_node(nb), repeats=5)
        rows.append(("same notebook, full nbconvert HTML export", f"{median:.0f} ms",
                     f"{worst:.0f} ms", ""))

    table = ["| measurement | median | worst | goal |", "| --- | --- | --- | --- |"]
    table += [f"| {name} | {median} | {worst} | {goal} |" for name, median, worst, goal in rows]
    machine = f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"
    report = (
        f"# Bibliography benchmark\n\n{ENTRIES:,} generated entries (`python bench/bib_bench.py`;"
        f" {machine}, {REPEATS} repeats unless fewer are shown).\n\n" + "\n".join(table) + "\n"
    )
    print(report)
    results = REPOSITORY / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "bib.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
