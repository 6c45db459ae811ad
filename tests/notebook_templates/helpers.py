"""Templates for the tests: notebooks pushed to the real repository, and reading the results."""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gilhub.contents import query as contents
from gilhub.repository import notebooks
from tests.hub.conftest import RunningHub
from tests.repository.helpers import push_notebook

SAMPLEDB_TEMPLATE = "some_instrument/data_analysis.ipynb"
NAMED_TEMPLATE = "some_instrument/Data_Analysis_{measurement_name}.ipynb"
PARAMETERS_SOURCE = (
    'measurement_name = "unknown"  # the measurement in SampleDB\n'
    'created = ""  # when it was made\n'
    "threshold = 0.5  # counts below are noise"
)


def template_bytes(
    title: str = "Data analysis", *, kernel: str = "python3", language: str = "python"
) -> bytes:
    """A template: a markdown cell (title, description), a parameters cell, a cell using them."""
    parameters = new_code_cell(PARAMETERS_SOURCE)
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(f"# {title}\nAnalyses one measurement from SampleDB."),
        parameters,
        new_code_cell("print(measurement_name, threshold)"),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": kernel, "language": language, "display_name": kernel}
    notebook.metadata["language_info"] = {"name": language}
    return nbformat.writes(notebook).encode()


async def push_template(hub: RunningHub, name: str, content: bytes | None = None) -> int:
    """Push ``content`` (default: :func:`template_bytes`) as template ``name``; its new version."""
    return await push_notebook(hub, "templates/" + name, content or template_bytes())


async def stored_notebook(hub: RunningHub, owner: str, path: str) -> nbformat.NotebookNode | None:
    async with hub.app.db.connect() as conn:
        record = await contents.read_file(conn, owner, path)
    return None if record is None else notebooks.parse_notebook(record.content)


def injected_cell(notebook: nbformat.NotebookNode) -> tuple[int, Any]:
    found = [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if "injected-parameters" in cell.metadata.get("tags", [])
    ]
    assert len(found) == 1, f"expected one injected cell, found {len(found)}"
    return found[0]


def run_injected(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The names the injected cell defines, by running its source with Python's ``exec``."""
    namespace: dict[str, Any] = {}
    exec(injected_cell(notebook)[1].source, namespace)  # noqa: S102 (the point of the test)
    namespace.pop("__builtins__")
    return namespace
