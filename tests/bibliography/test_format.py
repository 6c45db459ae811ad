"""Formatting: LaTeX decoded, links only for http(s), everything escaped."""

from __future__ import annotations

from gilhub.bibliography.format import (
    cite_label,
    entry_bibtex,
    format_entry_html,
    format_entry_text,
    latex_to_text,
)
from gilhub.bibliography.library import parse_bibliography

from .conftest import EXAMPLE_BIB


def _entry(bibtex: bytes, key: str):
    return parse_bibliography(bibtex).entries[key]


def test_latex_accents_math_and_logos_are_decoded():
    assert latex_to_text('Schr{\\"o}dinger') == "Schrödinger"
    assert latex_to_text("The $\\alpha$ and {$\\beta$} particles") == "The α and β particles"
    assert latex_to_text("{\\LaTeX}: A Document Preparation System").startswith("LaTeX:")
    assert latex_to_text("pp.~5--7") == "pp. 5–7"


def test_real_entries_read_well():
    library = parse_bibliography(EXAMPLE_BIB.read_bytes())
    html = format_entry_html(library.entries["einstein1905electrodynamics"])
    assert "Albert Einstein" in html and "Zur Elektrodynamik bewegter Körper" in html
    assert "<em class='bib-venue'>Annalen der Physik</em>, 322(10), 891–921" in html
    assert "href='https://doi.org/10.1002/andp.19053221004'" in html
    assert cite_label(library.entries["cooley1965fft"]) == "Cooley and Tukey 1965"
    assert cite_label(library.entries["metropolis1953equation"]) == "Metropolis et al. 1953"
    assert cite_label(library.entries["atlas2012higgs"]) == "ATLAS Collaboration 2012"
    proceedings = format_entry_html(library.entries["seabold2010statsmodels"])
    assert "In Stéfan van der Walt and Jarrod Millman (eds.)" in proceedings


def test_script_and_javascript_urls_are_escaped_never_active():
    entry = _entry(
        b"@misc{evil, author={<script>alert(1)</script>}, title={<img src=x onerror=alert(2)>},"
        b' url={javascript:alert(3)}, doi={"><script>alert(4)</script>}, note={x}}',
        "evil",
    )
    html = str(format_entry_html(entry))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert "href='javascript" not in html and 'href="javascript' not in html
    assert "<a" not in html  # neither the URL nor the bogus DOI is a link
    assert "onerror" in format_entry_text(entry)  # shown as text


def test_a_quote_in_an_http_url_cannot_break_out_of_the_attribute():
    entry = _entry(b"@misc{q, title={T}, url={https://example.org/a'onmouseover='alert(1)}}", "q")
    html = str(format_entry_html(entry))
    assert "href='https://example.org/a&#39;onmouseover=&#39;alert(1)'" in html


def test_entry_bibtex_is_self_contained():
    library = parse_bibliography(EXAMPLE_BIB.read_bytes())
    text = entry_bibtex(library.entries["mckinney2010pandas"])
    again = parse_bibliography(text.encode()).entries["mckinney2010pandas"]
    assert again.fields["booktitle"].startswith("Proceedings of the 9th")
    assert "crossref" not in again.fields
    higgs = parse_bibliography(entry_bibtex(library.entries["higgs1964broken"]).encode())
    assert higgs.entries["higgs1964broken"].fields["journal"] == "Physical Review Letters"
