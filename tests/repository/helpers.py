"""Notebook builders shared by the repository tests, and pushing them to a real hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gilhub.repository import notebooks, store

if TYPE_CHECKING:
    from tests.hub.conftest import RunningHub


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


async def push_notebook(hub: RunningHub, path: str, content: bytes) -> int:
    """Push ``content`` to ``hub``'s repository at ``path`` as its admin; the new version."""
    prepared = notebooks.prepare_push(path, content, strip=True, max_size=10**7)
    async with hub.app.db.begin() as conn:
        entry = await store.get_entry(conn, path)
        result = await store.push(
            conn,
            path=path,
            prepared=prepared,
            author=hub.admin_name,
            base=entry.head if entry else None,
        )
    return result.version.number
