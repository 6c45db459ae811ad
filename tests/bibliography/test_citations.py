"""Citation forms in markdown, and the nbconvert preprocessor, against the real file.

The forms themselves are cases in ``citation_cases.json``, which the JupyterLab
extension's tests (labextension/test) read too.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gilhub.bibliography.citations import cited_keys, find_citations, link_citations
from gilhub.bibliography.library import parse_bibliography
from gilhub.bibliography.preprocessor import CitationPreprocessor, is_references_cell

from .conftest import EXAMPLE_BIB

LIBRARY = parse_bibliography(EXAMPLE_BIB.read_bytes())
KNOWN = LIBRARY.entries


CASES = json.loads((Path(__file__).parent / "citation_cases.json").read_text(encoding="utf-8"))


def keys(text: str) -> list[dict[str, object]]:
    return [
        {
            "key": cited.key,
            "prefix": cited.prefix,
            "locator": cited.locator,
            "suppress_author": cited.suppress_author,
        }
        for citation in find_citations(text, KNOWN)
        for cited in citation.keys
    ]


def test_the_shared_cases_known_keys_are_in_the_example_bibliography():
    assert set(CASES["known"]) <= set(KNOWN)


@pytest.mark.parametrize("case", CASES["citations"], ids=lambda case: case["text"])
def test_every_citation_form_is_recognised(case):
    assert keys(case["text"]) == case["cited"]


@pytest.mark.parametrize("case", CASES["not_citations"], ids=lambda case: case["text"])
def test_what_is_not_a_citation(case):
    assert keys(case["text"]) == []


@pytest.mark.parametrize("case", CASES["cited_keys_in_order"], ids=lambda case: case["text"])
def test_cited_keys_in_order_of_first_citation(case):
    assert cited_keys(case["text"]) == case["keys"]


def test_links_labels_and_missing_keys():
    html, cited = link_citations(
        r"As shown in [@einstein1905electrodynamics; \citep[p.~5]{shannon1948communication}]"
        " and [@nosuchkey2024] and \\citet{cooley1965fft}.",
        LIBRARY,
        "/hub/bib",
    )
    assert cited == [
        "einstein1905electrodynamics",
        "shannon1948communication",
        "nosuchkey2024",
        "cooley1965fft",
    ]
    assert "href='/hub/bib#einstein1905electrodynamics'" in html
    assert ">Einstein 1905</a>" in html and ">Shannon 1948</a>, p. 5)" in html
    assert "title='Albert Einstein (1905). Zur Elektrodynamik bewegter Körper." in html
    assert "gilhub-cite-missing" in html and "?nosuchkey2024" in html
    assert ">Cooley and Tukey (1965)</a>" in html


def test_preprocessor_links_and_appends_one_references_section():
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# Results\nAs shown in [@higgs1964broken; \\citep{englert1964broken}]."
            ),
            new_code_cell("email = 'x@higgs1964broken'  # code is left alone"),
            new_markdown_cell("See also @atlas2012higgs and [@missing2099]."),
        ]
    )
    preprocessor = CitationPreprocessor(library=LIBRARY, bib_url="/hub/bib")
    once, resources = preprocessor.preprocess(nbformat.from_dict(nb), {})
    assert resources["gilhub"]["cited_keys"] == [
        "higgs1964broken",
        "englert1964broken",
        "atlas2012higgs",
        "missing2099",
    ]
    references = [cell for cell in once.cells if is_references_cell(cell)]
    assert len(references) == 1 and references[0].source.startswith("## References")
    assert "not in the bibliography" in references[0].source
    assert once.cells[1].source == "email = 'x@higgs1964broken'  # code is left alone"
    # a References section the JupyterLab extension wrote is refreshed, not repeated
    stale = new_markdown_cell("## References\n\nold", metadata={"gilhub": {"references": True}})
    nb_with_section = nbformat.from_dict({**nb, "cells": [*nb.cells, stale]})
    refreshed, _ = preprocessor.preprocess(nb_with_section, {})
    sections = [cell for cell in refreshed.cells if is_references_cell(cell)]
    assert len(sections) == 1 and "old" not in sections[0].source

    exporter = HTMLExporter()
    exporter.register_preprocessor(CitationPreprocessor(library=LIBRARY), True)
    body, _ = exporter.from_notebook_node(nbformat.from_dict(nb))
    assert "href='/hub/bib#higgs1964broken'" in body or 'href="/hub/bib#higgs1964broken"' in body
    assert "Peter W. Higgs (1964). Broken Symmetries and the Masses of Gauge Bosons." in body
