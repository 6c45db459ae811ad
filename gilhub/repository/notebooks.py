"""Checking, normalising and stripping what is pushed; recording origins.

All functions here are synchronous and CPU-bound on big notebooks; async
callers run them with ``asyncio.to_thread``.

The push and pull paths work on the notebook's plain JSON (``orjson``) and
validate it once against nbformat's schema: nbformat's own ``reads``/``writes``
validate on every call and encode JSON in pure Python, several times slower
on a megabyte notebook. Stored notebooks are written the same way every time
(sorted keys, sources as lists of lines), so equal notebooks are equal bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import nbformat
import orjson
from nbformat import NotebookNode
from nbformat.v4.rwbase import rejoin_lines

from gilhub.repository.errors import BadRequest, TooLarge
from gilhub.repository.paths import is_notebook

# The search index keeps this much cell text per entry: enough to find any
# notebook by what it says and does, while keeping a push of a big notebook
# fast (PostgreSQL's to_tsvector costs about 0.1 ms per kilobyte).
MAX_INDEXED_TEXT = 100_000
_ORIGIN_KEY = "gilhub"
_TEXT_CELLS = ("markdown", "code")

Notebook = dict[str, Any]


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


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def load_notebook(content: bytes) -> Notebook:
    """The notebook's JSON, checked against the nbformat 4 schema (older ones converted)."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        if b"\xff" in content[:4] or b"\xfe" in content[:4]:
            raise BadRequest("the notebook is not UTF-8 text") from None
        raise BadRequest(f"the notebook is not valid JSON: {error}") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise BadRequest("the file is JSON but not a notebook (no 'cells' or 'nbformat')")
    if data.get("nbformat") != 4:
        return _converted(content)
    try:
        nbformat.validate(data)
    except Exception as error:  # nbformat raises several kinds for broken notebooks
        raise BadRequest(f"the notebook is not valid: {_first_line(error)}") from None
    return data


def _converted(content: bytes) -> Notebook:
    """An nbformat 3 (or older) notebook, upgraded to 4 by nbformat."""
    try:
        notebook = nbformat.reads(content.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:
        raise BadRequest(f"the notebook is not valid: {_first_line(error)}") from None
    return orjson.loads(orjson.dumps(notebook))


def parse_notebook(content: bytes) -> NotebookNode:
    """A validated ``NotebookNode`` with joined sources, for nbconvert and nbdime."""
    notebook = nbformat.from_dict(load_notebook(content))
    rejoin_lines(notebook)
    return notebook


def _joined(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def _lines(value: str | list[str]) -> list[str]:
    return value.splitlines(True) if isinstance(value, str) else value


def serialize_notebook(notebook: Notebook) -> bytes:
    """Canonical bytes: sorted keys, sources and text outputs as lists of lines."""
    for cell in notebook["cells"]:
        cell["source"] = _lines(cell.get("source", ""))
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _lines(output["text"])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = _lines(value)
    return orjson.dumps(notebook, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def strip_outputs(notebook: Notebook) -> None:
    """Drop outputs, execution counts and per-run cell metadata, in place."""
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        metadata = cell.get("metadata", {})
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            metadata.pop(key, None)


def remove_origin(notebook: Notebook) -> None:
    gilhub = notebook.get("metadata", {}).get(_ORIGIN_KEY)
    if isinstance(gilhub, dict):
        gilhub.pop("origin", None)
        if not gilhub:
            del notebook["metadata"][_ORIGIN_KEY]


def read_origin(notebook: Notebook) -> tuple[str, int] | None:
    """The ``(repository path, version)`` a notebook was pulled from or pushed as."""
    gilhub = notebook.get("metadata", {}).get(_ORIGIN_KEY)
    origin = gilhub.get("origin") if isinstance(gilhub, dict) else None
    if not isinstance(origin, dict):
        return None
    path, version = origin.get("path"), origin.get("version")
    if isinstance(path, str) and isinstance(version, int) and not isinstance(version, bool):
        return path, version
    return None


def set_origin(notebook: Notebook, path: str, version: int) -> None:
    metadata = notebook.setdefault("metadata", {})
    gilhub = metadata.get(_ORIGIN_KEY)
    if not isinstance(gilhub, dict):
        gilhub = metadata[_ORIGIN_KEY] = {}
    gilhub["origin"] = {"path": path, "version": version}


def cells_text(notebook: Notebook) -> str:
    parts = []
    size = 0
    for cell in notebook["cells"]:
        if cell.get("cell_type") in _TEXT_CELLS:
            parts.append(_joined(cell.get("source", "")))
            size += len(parts[-1])
            if size >= MAX_INDEXED_TEXT:
                break
    return "\n".join(parts)[:MAX_INDEXED_TEXT].replace("\x00", "")


def prepare_push(repo_path: str, content: bytes, *, strip: bool, max_size: int) -> PreparedContent:
    """Check ``content`` for ``repo_path`` and return what the repository stores.

    Notebooks are validated, stripped of their outputs unless ``strip`` is
    false, and lose their gilhub origin (it describes a user's copy, not the
    shared one), so pushing back an unchanged pull makes no new version.
    """
    check_size(len(content), max_size)
    if not is_notebook(repo_path):
        text = content[:MAX_INDEXED_TEXT].decode("utf-8", errors="ignore").replace("\x00", "")
        return PreparedContent("file", content, sha256_hex(content), len(content), text)
    notebook = load_notebook(content)
    origin = read_origin(notebook)
    remove_origin(notebook)
    if strip:
        strip_outputs(notebook)
    stored = serialize_notebook(notebook)
    check_size(len(stored), max_size)
    text = cells_text(notebook)
    return PreparedContent("notebook", stored, sha256_hex(stored), len(stored), text, origin)


def with_origin(content: bytes, path: str, version: int) -> bytes:
    """``content`` (a notebook already checked) with its origin set to ``path`` @ ``version``."""
    notebook = orjson.loads(content)
    set_origin(notebook, path, version)
    return serialize_notebook(notebook)
