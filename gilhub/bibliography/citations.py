"""Citations in markdown, in every form the lab writes them.

Recognised (outside code spans and fenced code blocks):

- LaTeX and natbib: ``\\cite[key]`` (the original lab hub's form), ``\\cite{a,b}``,
  ``\\citep{key}``, ``\\citet{key}``, ``\\citep[p.~5]{key}``, ``\\citep[see][p.~5]{key}``;
- pandoc: ``[@key]``, ``[@a; @b, p. 3]``, ``[see -@key]``, and a bare ``@key``
  (only when ``key`` is in the bibliography, so e-mail addresses and
  @mentions are left alone); items of a bracket may also be LaTeX citations,
  as in ``[@key; \\citep{other}]``;
- MyST roles: ``{cite}`key```, ``{cite:p}`a,b```, ``{cite:t}`key```;
- HTML: ``<cite data-cite="key">text</cite>``.

:func:`find_citations` returns them with their positions; :func:`link_citations`
rewrites markdown so that each becomes a link to the bibliography page.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup

from gilhub.bibliography.format import cite_label, format_entry_text, latex_to_text, short_author
from gilhub.bibliography.format import year_of as _year_of
from gilhub.bibliography.library import KEY_PATTERN, ParsedLibrary

PARENTHETICAL, TEXTUAL, AUTHOR_ONLY, YEAR_ONLY, HTML_CITE = (
    "parenthetical",
    "textual",
    "author",
    "year",
    "html",
)


@dataclass(frozen=True, slots=True)
class CitedKey:
    key: str
    prefix: str = ""
    locator: str = ""
    suppress_author: bool = False


@dataclass(frozen=True, slots=True)
class Citation:
    start: int
    end: int
    keys: tuple[CitedKey, ...]
    style: str
    #: for ``<cite>``: the element's own text
    content: str = ""


# -- code that must not be searched -------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*$", re.MULTILINE)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_MYST_ROLE = re.compile(r"\{cite(?::(?P<kind>[a-z]+))?\}\Z")


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    ranges = []
    position = 0
    while match := _FENCE.search(text, position):
        fence = match.group(1)
        closing = re.compile(
            rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE
        )
        end_match = closing.search(text, match.end())
        end = end_match.end() if end_match else len(text)
        ranges.append((match.start(), end))
        position = end
    return ranges


def _mask(text: str, ranges: Iterable[tuple[int, int]]) -> str:
    """Blank out ``ranges`` (keeping newlines and offsets) so no pattern matches there."""
    chars = list(text)
    for start, end in ranges:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _split_keys(text: str) -> list[str]:
    return [key.strip() for key in re.split(r"[,;\s]+", text) if key.strip()]


def _myst_style(kind: str | None) -> str:
    if kind and kind.startswith("t"):
        return TEXTUAL
    return {"author": AUTHOR_ONLY, "year": YEAR_ONLY}.get(kind or "", PARENTHETICAL)


def _code_spans_and_roles(text: str) -> tuple[list[tuple[int, int]], list[Citation]]:
    """Inline code spans to protect, and MyST ``{cite}`…``` roles (which look like code)."""
    protected, roles = [], []
    for match in _CODE_SPAN.finditer(text):
        head = text[max(0, match.start() - 20) : match.start()]
        role = re.search(r"\{cite(?::[a-z]+)?\}\Z", head)
        if role and len(match.group(1)) == 1:
            kind = _MYST_ROLE.match(role.group()).group("kind")  # type: ignore[union-attr]
            keys = tuple(CitedKey(key) for key in _split_keys(match.group(2)))
            start = match.start() - len(role.group())
            roles.append(Citation(start, match.end(), keys, _myst_style(kind)))
        else:
            protected.append(match.span())
    return protected, roles


# -- the citation forms -------------------------------------------------------------

_LATEX_COMMANDS = {
    "cite": PARENTHETICAL,
    "citep": PARENTHETICAL,
    "citealp": PARENTHETICAL,
    "parencite": PARENTHETICAL,
    "autocite": PARENTHETICAL,
    "footcite": PARENTHETICAL,
    "citet": TEXTUAL,
    "citealt": TEXTUAL,
    "textcite": TEXTUAL,
    "citeauthor": AUTHOR_ONLY,
    "citeyear": YEAR_ONLY,
}
_LATEX_CITE_SOURCE = (
    r"\\(?P<command>" + "|".join(sorted(_LATEX_COMMANDS, key=len, reverse=True)) + r")\*?"
    r"(?P<options>(?:\[[^\[\]\n]*\]){0,2})(?:\{(?P<keys>[^{}\n]*)\})?"
)
_LATEX_CITE = re.compile(_LATEX_CITE_SOURCE)
_BRACKET_ITEM = r"(?:\\[A-Za-z]+\*?(?:\[[^\[\]\n]*\])*\{[^{}\n]*\}|[^\[\]\n])"
_BRACKET = re.compile(
    rf"\[(?P<body>{_BRACKET_ITEM}*?(?:@|\\[A-Za-z]*cite){_BRACKET_ITEM}*)\](?![(\[:])"
)
_TRAILING_PUNCTUATION = ":.#$%&+?<>~/-"
_PANDOC_ITEM = re.compile(
    rf"^(?P<prefix>.*?)(?<![\w@])(?P<suppress>-)?@(?:\{{(?P<braced>[^{{}}]+)\}}|(?P<key>{KEY_PATTERN}))(?P<locator>.*)\Z",
    re.DOTALL,
)
_BARE = re.compile(rf"(?<![\w@.+/\\`-])(?P<suppress>-)?@(?P<key>{KEY_PATTERN})")
_HTML_CITE = re.compile(
    r"<cite\b[^>]*?\bdata-cite\s*=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)')[^>]*>(?P<content>.*?)</cite\s*>",
    re.IGNORECASE | re.DOTALL,
)


def _note(text: str) -> str:
    return latex_to_text(text.strip())


def _latex_citation(match: re.Match[str], offset: int = 0) -> Citation | None:
    """A ``\\cite…`` match as a citation, or None when it is not one."""
    options = re.findall(r"\[([^\[\]\n]*)\]", match.group("options"))
    keys_text = match.group("keys")
    if keys_text is None:
        # The original lab hub's form: \cite[key] (one bracket, no braces).
        if match.group("command") != "cite" or len(options) != 1:
            return None
        keys_text, options = options[0], []
    keys = _split_keys(keys_text)
    if not keys:
        return None
    prefix, locator = ("", _note(options[0])) if len(options) == 1 else ("", "")
    if len(options) == 2:
        prefix, locator = _note(options[0]), _note(options[1])
    cited = [CitedKey(key) for key in keys]
    cited[0] = CitedKey(keys[0], prefix=prefix)
    cited[-1] = CitedKey(cited[-1].key, prefix=cited[-1].prefix, locator=locator)
    style = _LATEX_COMMANDS[match.group("command")]
    return Citation(match.start() + offset, match.end() + offset, tuple(cited), style)


def _trim_key(key: str) -> str:
    return key.rstrip(_TRAILING_PUNCTUATION)


def _bracket_items(body: str) -> list[CitedKey] | None:
    """The keys of a pandoc bracket, or None when some item is not a citation."""
    cited: list[CitedKey] = []
    for item in body.split(";"):
        latex = _LATEX_CITE.search(item)
        if latex and not item[: latex.start()].strip() and not item[latex.end() :].strip():
            citation = _latex_citation(latex)
            if citation is None:
                return None
            cited.extend(citation.keys)
            continue
        match = _PANDOC_ITEM.match(item.strip())
        if not match:
            return None
        raw_key = match.group("braced") or match.group("key")
        key = _trim_key(raw_key)
        locator = raw_key[len(key) :] + match.group("locator")
        cited.append(
            CitedKey(
                key,
                prefix=match.group("prefix").strip(),
                locator=locator.strip().lstrip(",").strip(),
                suppress_author=bool(match.group("suppress")),
            )
        )
    return cited


def _candidates(masked: str, known: Collection[str] | None) -> Iterable[Citation]:
    for match in _BRACKET.finditer(masked):
        items = _bracket_items(match.group("body"))
        if items:
            yield Citation(match.start(), match.end(), tuple(items), PARENTHETICAL)
    for match in _LATEX_CITE.finditer(masked):
        citation = _latex_citation(match)
        if citation:
            yield citation
    for match in _HTML_CITE.finditer(masked):
        keys = _split_keys(
            match.group("dq") if match.group("dq") is not None else match.group("sq")
        )
        if keys:
            cited = tuple(CitedKey(key) for key in keys)
            yield Citation(match.start(), match.end(), cited, HTML_CITE, match.group("content"))
    if known:
        for match in _BARE.finditer(masked):
            key = _trim_key(match.group("key"))
            if key in known:
                end = match.start("key") + len(key)
                cited = CitedKey(key, suppress_author=bool(match.group("suppress")))
                yield Citation(match.start(), end, (cited,), TEXTUAL)


def find_citations(text: str, known: Collection[str] | None = None) -> list[Citation]:
    """Every citation in markdown ``text``, in order, none overlapping.

    ``known`` is the set of keys in the bibliography; bare ``@key`` is a
    citation only when ``key`` is in it.
    """
    fenced = _fenced_ranges(text)
    outside_fences = _mask(text, fenced)
    code_spans, roles = _code_spans_and_roles(outside_fences)
    masked = _mask(outside_fences, code_spans + [(role.start, role.end) for role in roles])
    found = sorted(
        [*roles, *_candidates(masked, known)], key=lambda c: (c.start, -(c.end - c.start))
    )
    citations: list[Citation] = []
    for citation in found:
        if not citations or citation.start >= citations[-1].end:
            citations.append(citation)
    return citations


def cited_keys(text: str, known: Collection[str] | None = None) -> list[str]:
    """The distinct keys cited in ``text``, in order of first citation."""
    keys: dict[str, None] = {}
    for citation in find_citations(text, known):
        for cited in citation.keys:
            keys.setdefault(cited.key, None)
    return list(keys)


# -- rewriting markdown into links ---------------------------------------------------


def entry_href(bib_url: str, key: str) -> str:
    return f"{bib_url}#{quote(key, safe='')}"


class CitationRenderer:
    """Turns citations into HTML links to ``bib_url#key``, with the reference as tooltip."""

    def __init__(self, library: ParsedLibrary, bib_url: str = "/hub/bib") -> None:
        self.library = library
        self.bib_url = bib_url.rstrip("/")

    def link(self, cited: CitedKey, text: str) -> Markup:
        entry = self.library.get(cited.key)
        if entry is None:
            return Markup(
                "<span class='gilhub-cite gilhub-cite-missing' data-cite='{}' "
                "title='Not in the bibliography: {}'>?{}</span>"
            ).format(cited.key, cited.key, cited.key)
        return Markup(
            "<a class='gilhub-cite' data-cite='{}' href='{}' title='{}' target='_top'>{}</a>"
        ).format(cited.key, entry_href(self.bib_url, cited.key), format_entry_text(entry), text)

    def _label(self, cited: CitedKey, style: str) -> str:
        entry = self.library.get(cited.key)
        if entry is None:
            return cited.key
        if style == AUTHOR_ONLY:
            return short_author(entry)
        if style == YEAR_ONLY or cited.suppress_author:
            return _year_of(entry)
        if style == TEXTUAL:
            return f"{short_author(entry)} ({_year_of(entry)})"
        return cite_label(entry)

    def _item(self, cited: CitedKey, style: str) -> Markup:
        parts = []
        if cited.prefix:
            parts.append(Markup("{} ").format(cited.prefix))
        parts.append(self.link(cited, self._label(cited, style)))
        if cited.locator:
            parts.append(Markup(", {}").format(cited.locator))
        return Markup("").join(parts)

    def render(self, citation: Citation) -> Markup:
        if citation.style == HTML_CITE:
            inner = Markup(", ").join(
                self.link(cited, citation.content or self._label(cited, PARENTHETICAL))
                for cited in citation.keys
            )
            return Markup("<cite>{}</cite>").format(inner)
        items = Markup("; ").join(self._item(cited, citation.style) for cited in citation.keys)
        if citation.style == PARENTHETICAL:
            return Markup("({})").format(items)
        return items

    def link_citations(self, text: str) -> tuple[str, list[str]]:
        """``text`` with each citation replaced by links, and the keys cited, in order."""
        pieces, keys, position = [], {}, 0
        for citation in find_citations(text, self.library.entries):
            pieces.append(text[position : citation.start])
            pieces.append(str(self.render(citation)))
            position = citation.end
            for cited in citation.keys:
                keys.setdefault(cited.key, None)
        pieces.append(text[position:])
        return "".join(pieces), list(keys)


def link_citations(
    text: str, library: ParsedLibrary, bib_url: str = "/hub/bib"
) -> tuple[str, list[str]]:
    return CitationRenderer(library, bib_url).link_citations(text)


__all__ = [
    "Citation",
    "CitationRenderer",
    "CitedKey",
    "cited_keys",
    "entry_href",
    "find_citations",
    "link_citations",
]
