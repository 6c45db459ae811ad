"""Checking, normalising and stripping what is pushed; recording origins.

All functions here are synchronous and CPU-bound on big notebooks; async
callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

from gilhub.repository.errors import BadRequest, TooLarge
from gilhub.repository.paths import is_notebook

# The search index keeps this much cell text per entry (a tsvector is
# limited to 1 MB; the first half-million characters find any notebook).
MAX_INDEXED_TEXT = 500_000
_ORIGIN_KEY = "gilhub"


@dataclass(frozen=True)
class PreparedContent:
    """What the repository stores for one push."""

    kind: str  # "notebook" or "file"
    content: bytes
    sha256: str
    size: int
    text: str  # markdown and code cell sources, for search
    origin: tuple[str, int] | None = None  # where the pushed copy came from


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise TooLarge(
            f"the file is {size:,} bytes; the repository takes at most {max_size:,} bytes",
            size=size,
            max_size=max_size,
        )


def parse_notebook(content: bytes) -> NotebookNode:
    """Read and validate a notebook, raising :class:`BadRequest` with the reason."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the notebook is not UTF-8 text: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(f"the notebook is not valid JSON: {error}") from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise BadRequest("the file is JSON but not a notebook (no 'cells' or 'nbformat')")
    try:
        # reads() rather than from_dict(): it also joins multi-line sources
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for broken notebooks
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BadRequest(f"the notebook is not valid: {reason}") from None
    return notebook


def serialize_notebook(notebook: NotebookNode) -> bytes:
    return (nbformat.writes(notebook) + "\n").encode("utf-8")


def strip_outputs(notebook: NotebookNode) -> None:
    """Drop outputs, execution counts and per-run cell metadata, in place."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)


def remove_origin(notebook: NotebookNode) -> None:
    gilhub = notebook.metadata.get(_ORIGIN_KEY)
    if isinstance(gilhub, dict):
        gilhub.pop("origin", None)
        if not gilhub:
            del notebook.metadata[_ORIGIN_KEY]


def read_origin(notebook: NotebookNode) -> tuple[str, int] | None:
    """The ``(repository path, version)`` a notebook was pulled from or pushed as."""
    origin = notebook.metadata.get(_ORIGIN_KEY, {}).get("origin")
    if not isinstance(origin, dict):
        return None
    path, version = origin.get("path"), origin.get("version")
    if isinstance(path, str) and isinstance(version, int) and not isinstance(version, bool):
        return path, version
    return None


def set_origin(notebook: NotebookNode, path: str, version: int) -> None:
    notebook.metadata.setdefault(_ORIGIN_KEY, {})["origin"] = {"path": path, "version": version}


def cells_text(notebook: NotebookNode) -> str:
    parts = [cell.source for cell in notebook.cells if cell.cell_type in ("markdown", "code")]
    return "\n".join(parts)[:MAX_INDEXED_TEXT]


def prepare_push(repo_path: str, content: bytes, *, strip: bool, max_size: int) -> PreparedContent:
    """Check ``content`` for ``repo_path`` and return what the repository stores.

    Notebooks are validated, stripped of their outputs unless ``strip`` is
    false, and lose their gilhub origin (it describes a user's copy, not the
    shared one), so pushing back an unchanged pull makes no new version.
    """
    check_size(len(content), max_size)
    if not is_notebook(repo_path):
        text = content.decode("utf-8", errors="ignore")[:MAX_INDEXED_TEXT].replace("\x00", "")
        return PreparedContent("file", content, sha256_hex(content), len(content), text)
    notebook = parse_notebook(content)
    origin = read_origin(notebook)
    remove_origin(notebook)
    if strip:
        strip_outputs(notebook)
    stored = serialize_notebook(notebook)
    check_size(len(stored), max_size)
    text = cells_text(notebook)
    return PreparedContent("notebook", stored, sha256_hex(stored), len(stored), text, origin)


def with_origin(content: bytes, path: str, version: int) -> bytes:
    """``content`` (a stored notebook) with its origin set to ``path`` @ ``version``."""
    notebook = parse_notebook(content)
    set_origin(notebook, path, version)
    return serialize_notebook(notebook)
