"""Notebook builders shared by the repository tests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output


def notebook_bytes(*sources: str, output: str | None = None, markdown: str = "") -> bytes:
    """A valid notebook with a markdown cell and one code cell per source."""
    cells = [new_markdown_cell(markdown)] if markdown else []
    for source in sources:
        cell = new_code_cell(source, execution_count=1)
        if output is not None:
            cell.outputs = [new_output("display_data", data={"text/html": output})]
        cells.append(cell)
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"  # stable ids: the same sources give the same bytes
    return (nbformat.writes(new_notebook(cells=cells)) + "\n").encode()
