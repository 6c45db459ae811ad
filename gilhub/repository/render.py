"""Versions as HTML and as merges: a sanitised view, cell-by-cell diffs, nbdime merges.

Everything here is synchronous and CPU-bound (nbconvert, nbdime); the
handlers run it with ``asyncio.to_thread``. nbconvert is imported on the first
rendering: importing it (mistune, bleach, BeautifulSoup …) would delay the
hub's start by about a second. Nothing touches nbdime's global
diff settings: a source-only diff is made by diffing copies whose outputs
and metadata were removed, so concurrent diffs never disturb each other.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nh3
from markupsafe import Markup, escape
from nbdime import diff_notebooks
from nbdime.merging import merge_notebooks
from nbformat import NotebookNode

from gilhub.repository.notebooks import parse_notebook, serialize_notebook
from gilhub.repository.store import MATCH_END, MATCH_START

if TYPE_CHECKING:
    from nbconvert.preprocessors import Preprocessor

# The lab template without its scripts from the internet (require.js,
# mermaid): MathJax and its configuration are loaded from the hub itself, as
# files, so the page works offline under a CSP that forbids inline scripts.
_VIEW_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script src="{{ resources.gilhub_mathjax_config_url }}"></script>
<script src="{{ resources.mathjax_url }}" async></script>
{%- endblock html_head_js_mathjax -%}
"""


_ATTRIBUTES = {
    tag: set(attributes) | {"class"} for tag, attributes in nh3.ALLOWED_ATTRIBUTES.items()
}
_ATTRIBUTES["*"] = {"class", "title", "lang", "dir"}
_ATTRIBUTES["table"] = {"class", "border"}
_ATTRIBUTES["a"] = _ATTRIBUTES.get("a", set()) | {"target", "data-cite"}


def _no_data_urls_but_images(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "target":
        # Links leave the sandboxed view frame only for the whole window.
        return "_top" if tag == "a" else None
    if value.strip().lower().startswith("data:"):
        image = tag == "img" and attribute == "src" and value.lower().startswith("data:image/")
        return value if image else None
    return value


def clean_html(html: str) -> str:
    """Keep the formatting of markdown and HTML outputs, drop scripts and handlers.

    Replaces nbconvert's ``clean_html`` filter (bleach's short default list,
    which escapes even paragraphs and headings) with nh3 (ammonia): tags and
    attributes from an allow list, ``javascript:`` URLs removed, ``data:``
    URLs kept for images only.
    """
    return nh3.clean(
        html,
        attributes=_ATTRIBUTES,
        url_schemes=nh3.ALLOWED_URL_SCHEMES | {"data"},
        attribute_filter=_no_data_urls_but_images,
    )


def render_view(
    content: bytes,
    *,
    mathjax_url: str,
    mathjax_config_url: str,
    preprocessors: Sequence[Preprocessor] = (),
) -> str:
    """A stand-alone HTML page of a notebook; HTML in outputs and markdown is sanitised.

    ``preprocessors`` run before rendering (the hub passes the bibliography's
    citation preprocessor, so citations become links and a References section).
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        sanitize_html=True,
        filters={"clean_html": clean_html},
        extra_loaders=[DictLoader({"gilhub_view.html.j2": _VIEW_TEMPLATE})],
        template_file="gilhub_view.html.j2",
        mathjax_url=mathjax_url,
    )
    for preprocessor in preprocessors:
        exporter.register_preprocessor(preprocessor, enabled=True)
    resources = {"gilhub_mathjax_config_url": mathjax_config_url}
    html, _ = exporter.from_notebook_node(parse_notebook(content), resources=resources)
    return html


# -- diffs ---------------------------------------------------------------------


@dataclass
class Line:
    tag: str  # " " unchanged, "+" added, "-" removed
    text: str


@dataclass
class CellDiff:
    """One row of a cell-by-cell diff."""

    status: str  # "unchanged", "added", "removed", "modified"
    cell_type: str
    source: list[Line]
    outputs: list[Line] = field(default_factory=list)


def _line_diff(old: str, new: str) -> list[Line]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    lines: list[Line] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            lines.extend(Line(" ", text) for text in old_lines[a1:a2])
            continue
        lines.extend(Line("-", text) for text in old_lines[a1:a2])
        lines.extend(Line("+", text) for text in new_lines[b1:b2])
    return lines


def _output_text(output: dict[str, Any]) -> str:
    """A textual stand-in for an output, good enough to see what changed."""
    kind = output.get("output_type")
    if kind == "stream":
        return f"[{output.get('name', 'stream')}]\n{output.get('text', '')}"
    if kind == "error":
        return f"[error] {output.get('ename', '')}: {output.get('evalue', '')}"
    data = output.get("data", {})
    if "text/plain" in data:
        return f"[{kind}]\n{data['text/plain']}"
    described = ", ".join(
        f"{mime} ({len(str(value)):,} characters)" for mime, value in data.items()
    )
    return f"[{kind}] {described}"


def _outputs_text(cell: dict[str, Any]) -> str:
    return "\n".join(_output_text(output) for output in cell.get("outputs", []))


def _sources_only(notebook: NotebookNode, with_outputs: bool) -> NotebookNode:
    trimmed = copy.deepcopy(notebook)
    trimmed.metadata = {}
    for cell in trimmed.cells:
        cell.metadata = {}
        cell.pop("attachments", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            if not with_outputs:
                cell.outputs = []
    return trimmed


def _row(status: str, old: dict | None, new: dict | None, with_outputs: bool) -> CellDiff:
    cell = new or old
    assert cell is not None
    source = _line_diff(old["source"] if old else "", new["source"] if new else "")
    outputs = []
    if with_outputs and cell.get("cell_type") == "code":
        outputs = _line_diff(_outputs_text(old or {}), _outputs_text(new or {}))
    return CellDiff(status, cell.get("cell_type", "code"), source, outputs)


def diff_cells(old_content: bytes, new_content: bytes, *, outputs: bool = False) -> list[CellDiff]:
    """Cell-by-cell differences between two notebooks (nbdime aligns the cells)."""
    old = _sources_only(parse_notebook(old_content), outputs)
    new = _sources_only(parse_notebook(new_content), outputs)
    cell_ops: list[dict[str, Any]] = []
    for op in diff_notebooks(old, new):
        if op["key"] == "cells":
            cell_ops = op["diff"]
    by_index: dict[int, list[dict[str, Any]]] = {}
    for op in cell_ops:
        by_index.setdefault(op["key"], []).append(op)
    rows: list[CellDiff] = []
    new_index = 0
    removed_until = 0
    for index in range(len(old.cells) + 1):
        for op in by_index.get(index, []):
            if op["op"] == "addrange":
                for cell in op["valuelist"]:
                    rows.append(_row("added", None, cell, outputs))
                    new_index += 1
            elif op["op"] == "removerange":
                removed_until = index + op["length"]
        if index == len(old.cells):
            break
        cell = old.cells[index]
        if index < removed_until:
            rows.append(_row("removed", cell, None, outputs))
            continue
        patched = any(op["op"] == "patch" for op in by_index.get(index, []))
        status = "modified" if patched else "unchanged"
        rows.append(_row(status, cell, new.cells[new_index], outputs))
        new_index += 1
    return rows


def diff_text(old_content: bytes, new_content: bytes) -> list[CellDiff]:
    """A plain file's diff, as a single row."""
    old = old_content.decode("utf-8", errors="replace")
    new = new_content.decode("utf-8", errors="replace")
    status = "unchanged" if old == new else "modified"
    return [CellDiff(status, "raw", _line_diff(old, new))]


# -- merges ----------------------------------------------------------------------


@dataclass
class MergeResult:
    content: bytes | None  # the merged notebook when it merged cleanly
    conflicts: int


def merge(base: bytes, mine: bytes, theirs: bytes) -> MergeResult:
    """nbdime's three-way merge of my changes and theirs since ``base``."""
    merged, decisions = merge_notebooks(
        parse_notebook(base), parse_notebook(mine), parse_notebook(theirs)
    )
    conflicts = sum(1 for decision in decisions if decision.conflict)
    if conflicts:
        return MergeResult(None, conflicts)
    return MergeResult(serialize_notebook(merged), 0)


def snippet_html(snippet: str) -> Markup:
    """A search hit's snippet as HTML: its text escaped, the matched words in ``<mark>``."""
    escaped = str(escape(snippet))
    return Markup(  # noqa: S704 (escaped above; only gilhub's own marks become tags)
        escaped.replace(MATCH_START, "<mark>").replace(MATCH_END, "</mark>")
    )
