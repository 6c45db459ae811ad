"""An nbconvert preprocessor: citations become links, and a References section is added.

Used wherever the hub renders a notebook (the repository's view, reports, HTML
export)::

    exporter = HTMLExporter()
    exporter.register_preprocessor(hub_citation_preprocessor(hub), enabled=True)

The References cell is recognised by its metadata ``{"gilhub": {"references":
true}}`` (the JupyterLab extension writes the same marker), so rendering a
notebook that already has one refreshes it instead of adding a second.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from traitlets import Instance, Unicode

from gilhub.bibliography.citations import CitationRenderer, entry_href
from gilhub.bibliography.format import format_entry_html
from gilhub.bibliography.library import ParsedLibrary

REFERENCES_MARKER = {"gilhub": {"references": True}}


def is_references_cell(cell: NotebookNode) -> bool:
    return bool(cell.get("metadata", {}).get("gilhub", {}).get("references"))


def references_html(keys: list[str], renderer: CitationRenderer) -> Markup:
    """An ordered list of the cited entries, each linking to its bibliography entry."""
    items = []
    for key in keys:
        entry = renderer.library.get(key)
        href = entry_href(renderer.bib_url, key)
        if entry is None:
            items.append(
                Markup(
                    "<li class='gilhub-reference gilhub-cite-missing'>{} — not in the "
                    "bibliography</li>"
                ).format(key)
            )
        else:
            items.append(
                Markup(
                    "<li class='gilhub-reference' data-cite='{}'>{} "
                    "<a href='{}' target='_top'>[{}]</a></li>"
                ).format(key, format_entry_html(entry), href, key)
            )
    return Markup("<ol class='gilhub-references'>\n{}\n</ol>").format(Markup("\n").join(items))


class CitationPreprocessor(Preprocessor):
    """Link citations in markdown cells and append (or refresh) a References cell."""

    library = Instance(ParsedLibrary, allow_none=True, help="The parsed bibliography.")
    bib_url = Unicode(
        "/hub/bib", help="URL of the bibliography page (links go to bib_url#key)."
    ).tag(config=True)
    references_title = Unicode("References", help="Heading of the appended section.").tag(
        config=True
    )

    def preprocess(
        self, nb: NotebookNode, resources: dict[str, Any]
    ) -> tuple[NotebookNode, dict[str, Any]]:
        if self.library is None:
            return nb, resources
        renderer = CitationRenderer(self.library, self.bib_url)
        cited: dict[str, None] = {}
        cells = [cell for cell in nb.cells if not is_references_cell(cell)]
        for cell in cells:
            if cell.cell_type != "markdown":
                continue
            source, keys = renderer.link_citations(cell.source)
            cell.source = source
            cited.update(dict.fromkeys(keys))
        if cited:
            body = references_html(list(cited), renderer)
            cells.append(
                new_markdown_cell(
                    f"## {self.references_title}\n\n{body}\n", metadata=REFERENCES_MARKER
                )
            )
        nb.cells = cells
        resources.setdefault("gilhub", {})["cited_keys"] = list(cited)
        return nb, resources


def hub_citation_preprocessor(hub: Any) -> CitationPreprocessor:
    """The preprocessor for a hub's renderers (repository view, reports, HTML export).

    Blocking (it may parse the file once after a change): call it where the rendering
    itself runs, in a worker thread.
    """
    library = hub.bibliography.file.library_sync()
    return CitationPreprocessor(library=library, bib_url=hub.hub_prefix + "bib")
