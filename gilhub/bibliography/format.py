"""Readable formatting of entries: LaTeX decoded to text, everything escaped.

Field values keep their LaTeX in the file; here ``Schr{\\"o}dinger`` becomes
"Schrödinger" and ``$\\alpha$`` becomes "α" (pylatexenc). Every value is
HTML-escaped (markupsafe), and only ``http``/``https`` URLs and DOIs become
links, so a field holding ``<script>`` or a ``javascript:`` URL stays inert
text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import quote, urlsplit

from bibtexparser.middlewares.names import (
    parse_single_name_into_parts,
    split_multiple_persons_names,
)
from markupsafe import Markup
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from gilhub.bibliography.library import BibEntry

_LATEX_SPECIALS = re.compile(r"[\\$%~^&]|--")


def _latex_context():  # noqa: ANN202 - pylatexenc's context database
    context = get_default_latex_context_db()
    logos = [MacroTextSpec(name, simplify_repl=name) for name in ("TeX", "LaTeX", "BibTeX")]
    context.add_context_category("gilhub-logos", prepend=True, macros=logos)
    return context


_latex2text = LatexNodes2Text(
    latex_context=_latex_context(), math_mode="text", strict_latex_spaces=True
)


@functools.lru_cache(maxsize=65536)
def latex_to_text(value: str) -> str:
    """Decode LaTeX to plain Unicode text (accents, math, dashes, protective braces)."""
    if not _LATEX_SPECIALS.search(value):
        text = value.replace("{", "").replace("}", "")
    else:
        try:
            text = _latex2text.latex_to_text(value)
        except Exception:  # noqa: BLE001 - malformed LaTeX is shown as written
            text = value
    return " ".join(text.split())


_COMMANDS = re.compile(r"\\[A-Za-z]+\s*|\\.|[{}$]")
_COMBINING_MARKS = re.compile(
    r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)


def fold(value: str) -> str:
    """A cheap search form: LaTeX commands and accents dropped, lower case.

    ``Schr{\\"o}dinger`` and ``Schrödinger`` both fold to ``schrodinger``, which
    is what a person types into a search box.
    """
    stripped = _COMMANDS.sub("", value)
    if stripped.isascii():
        return stripped.lower()
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", stripped)).casefold()


@functools.lru_cache(maxsize=65536)
def person_names(value: str) -> tuple[tuple[str, str], ...]:
    """``(display name, last name)`` for each person in an author/editor field."""
    people = []
    for name in split_multiple_persons_names(value):
        if name.strip().lower() == "others":
            people.append(("others", "others"))
            continue
        parts = parse_single_name_into_parts(name, strict=False)
        last = latex_to_text(" ".join(parts.von + parts.last))
        display = " ".join(filter(None, [latex_to_text(" ".join(parts.first)), last]))
        if parts.jr:
            display += ", " + latex_to_text(" ".join(parts.jr))
        people.append((display or latex_to_text(name), last or latex_to_text(name)))
    return tuple(people)


def _join_people(names: list[str]) -> str:
    if names and names[-1] == "others":
        return ", ".join(names[:-1]) + " et al."
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def people_text(value: str) -> str:
    return _join_people([display for display, _ in person_names(value)])


def short_author(entry: BibEntry) -> str:
    """``Einstein``, ``Watson and Crick`` or ``Metropolis et al.`` (for citation labels)."""
    value = entry.get("author") or entry.get("editor")
    if not value:
        return latex_to_text(entry.get("organization") or entry.get("title") or entry.key)[:40]
    last_names = [last for _, last in person_names(value)]
    if len(last_names) == 1:
        return last_names[0]
    if len(last_names) == 2 and last_names[1] != "others":
        return f"{last_names[0]} and {last_names[1]}"
    return f"{last_names[0]} et al."


def year_of(entry: BibEntry) -> str:
    return latex_to_text(entry.get("year") or entry.get("date")[:4] or "n.d.")


def cite_label(entry: BibEntry) -> str:
    """``Einstein 1905``: the text of a citation link."""
    return f"{short_author(entry)} {year_of(entry)}"


def safe_url(url: str) -> str | None:
    """The URL when it is an absolute http(s) URL, else None (never a link)."""
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def doi_url(doi: str) -> str | None:
    doi = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", "", doi.strip(), flags=re.IGNORECASE)
    if not re.match(r"10\.\d{4,9}/\S+\Z", doi):
        return None
    return "https://doi.org/" + quote(doi, safe="/:;()._-<>[]")


def _text(entry: BibEntry, name: str) -> str:
    value = entry.get(name)
    return latex_to_text(value) if value else ""


def _volume_part(entry: BibEntry) -> str:
    volume, number, pages = _text(entry, "volume"), _text(entry, "number"), _text(entry, "pages")
    text = volume + (f"({number})" if number else "")
    if pages:
        text = f"{text}, {pages}" if text else f"pp. {pages}"
    return text


def _venue(entry: BibEntry) -> Markup:
    """Where the work appeared, by entry type."""
    kind = entry.entry_type
    parts: list[Markup | str] = []
    if kind == "article":
        journal = _text(entry, "journal") or _text(entry, "journaltitle")
        if journal:
            parts.append(Markup("<em class='bib-venue'>{}</em>").format(journal))
        parts.append(_volume_part(entry))
    elif kind in ("inproceedings", "incollection", "conference", "inbook"):
        booktitle = _text(entry, "booktitle")
        if booktitle:
            editors = people_text(entry.get("editor")) if entry.get("editor") else ""
            eds = f"{editors} (eds.), " if editors else ""
            parts.append(Markup("In {}<em class='bib-venue'>{}</em>").format(eds, booktitle))
        if entry.get("pages"):
            parts.append("pp. " + _text(entry, "pages"))
    elif kind in ("phdthesis", "mastersthesis", "thesis"):
        label = {"phdthesis": "PhD thesis", "mastersthesis": "Master's thesis"}.get(kind, "Thesis")
        parts.append(label)
        parts.append(_text(entry, "school") or _text(entry, "institution"))
    elif kind in ("techreport", "report"):
        number = _text(entry, "number")
        parts.append(f"Technical report {number}".strip())
        parts.append(_text(entry, "institution"))
    else:
        parts.append(_text(entry, "howpublished"))
    if kind not in ("article",):
        edition = _text(entry, "edition")
        parts.append(f"{edition} edition" if edition else "")
        parts.append(_text(entry, "publisher") or _text(entry, "organization"))
        parts.append(_text(entry, "address"))
    return Markup(", ").join(part for part in parts if part)


def _links(entry: BibEntry) -> Markup:
    links = []
    doi = entry.get("doi")
    if doi:
        href = doi_url(doi)
        if href:
            links.append(Markup("<a class='bib-doi' href='{}'>doi:{}</a>").format(href, doi))
        else:
            links.append(Markup("<span class='bib-doi'>doi:{}</span>").format(doi))
    url = entry.get("url")
    if url:
        href = safe_url(url)
        if href:
            links.append(
                Markup("<a class='bib-url' href='{}' rel='noopener noreferrer'>{}</a>").format(
                    href, url
                )
            )
        else:
            links.append(Markup("<span class='bib-url bib-unsafe'>{}</span>").format(url))
    return Markup(" ").join(links)


def format_entry_html(entry: BibEntry) -> Markup:
    """One entry as readable, escaped HTML: authors (year). title. venue. links."""
    authors = entry.get("author")
    who = people_text(authors) if authors else ""
    if not who and entry.get("editor"):
        who = people_text(entry.get("editor")) + " (ed.)"
    pieces = []
    if who:
        pieces.append(Markup("<span class='bib-authors'>{}</span>").format(who))
    pieces.append(Markup("(<span class='bib-year'>{}</span>).").format(year_of(entry)))
    title = _text(entry, "title")
    if title:
        pieces.append(Markup("<span class='bib-title'>{}</span>.").format(title))
    venue = _venue(entry)
    if venue:
        pieces.append(venue + ".")
    links = _links(entry)
    if links:
        pieces.append(links)
    return Markup(" ").join(pieces)


def format_entry_text(entry: BibEntry) -> str:
    """The formatted reference as plain text (tooltips, ``title`` attributes)."""
    return format_entry_html(entry).striptags()


def entry_bibtex(entry: BibEntry) -> str:
    """Self-contained BibTeX for one entry: ``@string`` macros and ``crossref`` resolved,
    LaTeX kept (what the copy button and a selection's download give)."""
    lines = [f"@{entry.entry_type}{{{entry.key},"]
    lines += [
        f"  {name} = {{{value}}}," for name, value in entry.fields.items() if name != "crossref"
    ]
    return "\n".join(lines) + "\n}\n"


__all__ = [
    "cite_label",
    "doi_url",
    "entry_bibtex",
    "fold",
    "format_entry_html",
    "format_entry_text",
    "latex_to_text",
    "people_text",
    "person_names",
    "safe_url",
    "short_author",
    "year_of",
]
