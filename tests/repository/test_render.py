"""Diffs, merges and the sanitised view, on notebooks built in the test."""

from __future__ import annotations

from gilhub.repository import render
from gilhub.repository.notebooks import parse_notebook
from tests.repository.helpers import notebook_bytes


def statuses(rows: list[render.CellDiff]) -> list[str]:
    return [row.status for row in rows]


def test_cells_added_removed_and_changed_line_by_line():
    old = notebook_bytes("import numpy", "x = 1\ny = 2", "plot(x)")
    new = notebook_bytes("import numpy", "x = 1\ny = 3", "plot(x)", "save(x)")
    rows = render.diff_cells(old, new)
    assert statuses(rows) == ["unchanged", "modified", "unchanged", "added"]
    assert [(line.tag, line.text) for line in rows[1].source] == [
        (" ", "x = 1"),
        ("-", "y = 2"),
        ("+", "y = 3"),
    ]
    removed = render.diff_cells(new, old)
    assert statuses(removed)[-1] == "removed"
    assert all(line.tag == "-" for line in removed[-1].source)


def test_outputs_only_on_request():
    old = notebook_bytes("show()", output="<b>old</b>")
    new = notebook_bytes("show()", output="<b>new</b>")
    assert statuses(render.diff_cells(old, new)) == ["unchanged"]
    with_outputs = render.diff_cells(old, new, outputs=True)
    assert statuses(with_outputs) == ["modified"] and with_outputs[0].outputs


def test_merge_is_offered_only_when_clean():
    base = notebook_bytes("a = 1", "b = 1")
    clean = render.merge(base, notebook_bytes("a = 1", "b = 2"), notebook_bytes("a = 3", "b = 1"))
    assert clean.conflicts == 0
    assert [c.source for c in parse_notebook(clean.content).cells] == ["a = 3", "b = 2"]
    clash = render.merge(base, notebook_bytes("a = 2", "b = 1"), notebook_bytes("a = 3", "b = 1"))
    assert clash.content is None and clash.conflicts > 0


def test_clean_html_keeps_formatting_and_drops_scripts():
    html = (
        "<h2 class='t'>Title</h2><p onclick='x()'>text <a href='javascript:alert(1)'>l</a></p>"
        "<script>alert(1)</script><img src='data:image/png;base64,AA'>"
        "<a href='data:text/html,<script>alert(1)</script>'>d</a><iframe src='x'></iframe>"
    )
    cleaned = render.clean_html(html)
    assert '<h2 class="t">Title</h2>' in cleaned and "<p>text" in cleaned
    for bad in ("<script", "onclick", "javascript:", "data:text", "<iframe"):
        assert bad not in cleaned
    assert 'src="data:image/png;base64,AA"' in cleaned


def test_text_files_diff_as_one_row():
    rows = render.diff_text(b"one\ntwo\n", b"one\nthree\n")
    assert statuses(rows) == ["modified"]
    assert ("+", "three") in [(line.tag, line.text) for line in rows[0].source]


def test_the_view_links_citations_to_the_bibliography_and_lists_references():
    from gilhub.bibliography.library import parse_bibliography
    from gilhub.bibliography.preprocessor import CitationPreprocessor

    library = parse_bibliography(
        b"@article{einstein1905,\n  author = {Albert Einstein},\n"
        b'  title = {Zur Elektrodynamik bewegter K{\\"o}rper},\n  year = {1905}\n}\n'
    )
    content = notebook_bytes("x = 1", markdown="As shown in [@einstein1905; @nobody].")
    html = render.render_view(
        content,
        mathjax_url="/hub/repo/mathjax/MathJax.js",
        mathjax_config_url="/hub/static/repo/mathjax-config.js",
        preprocessors=[CitationPreprocessor(library=library, bib_url="/hub/bib")],
    )
    assert 'href="/hub/bib#einstein1905"' in html
    assert 'target="_top"' in html  # the view is a sandboxed frame: open in the window
    assert "gilhub-cite-missing" in html and "References" in html
    assert "Körper" in html
