"""Parsing the lab's BibTeX file: the real example, damaged files, big files, the cache."""

from __future__ import annotations

import os
from pathlib import Path

from gilhub.bibliography.cache import PostgresParseCache
from gilhub.bibliography.library import Bibliography, parse_bibliography
from gilhub.bibliography.search import Query

from .conftest import EXAMPLE_BIB, generated_bibtex, line_of


def test_example_file_has_about_fifty_entries_and_its_problems_by_line():
    text = EXAMPLE_BIB.read_text(encoding="utf-8")
    library = parse_bibliography(EXAMPLE_BIB.read_bytes())
    assert len(library.entries) >= 50
    problems = {(problem.kind, problem.line) for problem in library.problems}
    assert ("unknown-type", line_of(text, "@webpage{jupyterproject")) in problems
    assert ("invalid-key", line_of(text, "@misc{lab notes 2019")) in problems
    assert ("parse-error", line_of(text, "@article{broken2020unbalanced")) in problems
    duplicate_line = text.index("@article{einstein1905electrodynamics", text.index("Entries kept"))
    assert ("duplicate-key", text[:duplicate_line].count("\n") + 1) in problems
    # the first entry under a duplicated key is the one kept
    first = library.entries["einstein1905electrodynamics"]
    assert first.line == line_of(text, "@article{einstein1905electrodynamics")
    assert first.fields["title"].startswith("Zur {E}lektrodynamik")


def test_string_macros_and_crossref_are_resolved_latex_is_kept():
    library = parse_bibliography(EXAMPLE_BIB.read_bytes())
    assert library.entries["higgs1964broken"].fields["journal"] == "Physical Review Letters"
    pandas = library.entries["mckinney2010pandas"]
    assert pandas.fields["booktitle"].startswith("Proceedings of the 9th")
    assert pandas.fields["year"] == "2010"
    assert "editor" in pandas.inherited and "pages" not in pandas.inherited
    assert (
        library.entries["schrodinger1926quantisierung"].fields["author"]
        == 'Schr{\\"o}dinger, Erwin'
    )


def test_unbalanced_braces_are_reported_and_later_entries_still_parse():
    data = (
        b"@article{good1, title={One}, year={2001}}\n"
        b"@article{bad, title={Missing brace, year={2002}}\n"
        b"@book{good2, title={Two}, year={2003}}\n"
    )
    library = parse_bibliography(data)
    assert {"good1", "good2"} <= set(library.entries)
    assert [(p.kind, p.line) for p in library.problems] == [("parse-error", 2)]


def test_non_utf8_bytes_are_reported_with_their_line_and_nothing_else_is_lost():
    data = b"@misc{a, title={Caf\xe9}}\n\n@misc{b, title={Fine}}\n"
    library = parse_bibliography(data)
    assert set(library.entries) == {"a", "b"}
    [problem] = library.problems
    assert (problem.kind, problem.line) == ("encoding", 1)
    assert "\N{REPLACEMENT CHARACTER}" in library.entries["a"].fields["title"]


def test_keys_with_spaces_or_braces_and_unknown_types_are_listed():
    library = parse_bibliography(
        b"@misc{has space, title={x}}\n@gadget{gadget1, title={y}}\n"
        b"@misc{a{b}, title={z}}\n@misc{, title={no key}}\n@misc{fine, title={w}}\n"
    )
    problems = [(problem.kind, problem.line) for problem in library.problems]
    assert problems == [
        ("invalid-key", 1),
        ("unknown-type", 2),
        ("parse-error", 3),
        ("invalid-key", 4),
    ]
    assert "no key" in library.problems[3].message
    assert {"gadget1", "fine"} <= set(library.entries)


def test_twenty_thousand_entries_parse_and_search():
    library = parse_bibliography(generated_bibtex(20_000).encode())
    assert len(library.entries) == 20_000 and not library.problems
    page = library.index.search(Query(author="schrodinger", year="1950-1959", per_page=50))
    assert page.total > 0 and len(page.entries) == 50
    assert all("1950" <= entry.fields["year"] <= "1959" for entry in page.entries)
    assert library.index.search(Query(text="quantum part 12345")).entries[0].key == "gen12345"


async def test_parsed_once_until_the_content_changes(bib_copy: Path):
    bibliography = Bibliography(bib_copy)
    first = await bibliography.library()
    for _ in range(5):
        assert await bibliography.library() is first
    assert bibliography.parse_count == 1

    # touched but not changed: stat differs, the hash does not, no re-parse
    stat = bib_copy.stat()
    os.utime(bib_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert (await bibliography.library()) is first
    assert bibliography.parse_count == 1

    # a hand edit is picked up without a restart
    with bib_copy.open("a", encoding="utf-8") as stream:
        stream.write("\n@misc{handedit2026, title={Added by hand}}\n")
    updated = await bibliography.library()
    assert "handedit2026" in updated.entries
    assert bibliography.parse_count == 2


async def test_a_missing_file_is_an_empty_bibliography_with_a_clear_problem(tmp_path: Path):
    library = await Bibliography(tmp_path / "nothing.bib").library()
    assert not library.entries
    assert library.problems[0].kind == "missing"


async def test_a_restart_takes_the_parsed_version_from_postgresql(bib_copy: Path, engine):
    first = Bibliography(bib_copy, PostgresParseCache(engine))
    parsed = await first.library()
    assert first.parse_count == 1

    restarted = Bibliography(bib_copy, PostgresParseCache(engine))
    again = await restarted.library()
    assert restarted.parse_count == 0
    assert again.entries == parsed.entries and again.problems == parsed.problems
    assert again.strings == parsed.strings and again.text == parsed.text
    assert again.index.search(Query(author="dijkstra")).total == 2

    with bib_copy.open("a", encoding="utf-8") as stream:
        stream.write("\n@misc{changed2026, title={A change}}\n")
    changed = await restarted.library()
    assert restarted.parse_count == 1 and "changed2026" in changed.entries
