"""Filtering, sorting and paging entries, fast on tens of thousands of them.

A :class:`SearchIndex` is built once per parsed version of the file (see
:attr:`ParsedLibrary.index`): each entry gets folded (LaTeX-free, accent-free,
lower-case) search strings, and each sort order is computed once on first use.
A query is then a linear scan of plain ``in`` tests on prepared strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gilhub.bibliography.format import fold, year_of
from gilhub.bibliography.library import KNOWN_ENTRY_TYPES, BibEntry

SORT_ORDERS = ("author", "year", "title", "key", "type", "file")
MAX_PER_PAGE = 500
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_YEAR_RANGE = re.compile(r"\s*(\d{1,4})?\s*(?:-|–|\.\.)\s*(\d{1,4})?\s*\Z")


@dataclass(frozen=True, slots=True)
class Query:
    text: str = ""
    author: str = ""
    year: str = ""
    entry_type: str = ""
    sort: str = "author"
    descending: bool = False
    page: int = 1
    per_page: int = 50

    def normalized(self) -> Query:
        return Query(
            text=self.text.strip(),
            author=self.author.strip(),
            year=self.year.strip(),
            entry_type=self.entry_type.strip().lower(),
            sort=self.sort if self.sort in SORT_ORDERS else "author",
            descending=self.descending,
            page=max(1, self.page),
            per_page=min(MAX_PER_PAGE, max(1, self.per_page)),
        )


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[BibEntry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class _Row:
    entry: BibEntry
    authors: str
    first_author: str
    title: str
    year: int | None
    everything: str


def _year_number(entry: BibEntry) -> int | None:
    match = re.search(r"\d{4}", year_of(entry))
    return int(match.group()) if match else None


def _first_author(entry: BibEntry) -> str:
    """Sort key of the author order: the first author's (or editor's) name, last name first.

    Kept cheap (it runs for every entry of a big file): "Last, First" keeps its order,
    "First Last" becomes "last first"; a braced name such as {ATLAS Collaboration} is kept.
    """
    people = entry.get("author") or entry.get("editor")
    if not people:
        return fold(entry.get("organization") or entry.get("title") or entry.key)
    first = _AND.split(people.strip(), maxsplit=1)[0].strip()
    if "," in first or first.startswith("{"):
        return fold(first)
    *given, last = first.split() or [""]
    return fold(" ".join([last, *given]))


def _row(entry: BibEntry) -> _Row:
    people = fold(" ; ".join(entry.get(name) for name in ("author", "editor") if entry.get(name)))
    others = " ".join(
        value for name, value in entry.fields.items() if name not in ("author", "editor")
    )
    searchable = " ".join([entry.key.casefold(), entry.entry_type, people, fold(others)])
    title = fold(entry.get("title"))
    return _Row(entry, people, _first_author(entry), title, _year_number(entry), searchable)


def _year_filter(spec: str) -> tuple[int, int] | None:
    """``1905``, ``1900-1950``, ``-1950`` or ``2000-`` as an inclusive range."""
    if spec.isdigit():
        return int(spec), int(spec)
    match = _YEAR_RANGE.match(spec)
    if not match:
        raise ValueError(f"not a year or a range of years: {spec!r}")
    low, high = match.groups()
    return int(low or 0), int(high or 9999)


class SearchIndex:
    def __init__(self, entries: Iterable[BibEntry]) -> None:
        self._rows = [_row(entry) for entry in entries]
        self._orders: dict[str, list[int]] = {}
        self._ranks: dict[str, dict[str, int]] = {}
        # the types a reader can filter by: those of the file that BibTeX knows (an entry of
        # an unknown type is listed among the file's problems instead)
        self.types = sorted({row.entry.entry_type for row in self._rows} & KNOWN_ENTRY_TYPES)
        self._order("author")  # the default order, computed with the index (off the loop)

    def __len__(self) -> int:
        return len(self._rows)

    def _sort_key(self, order: str):  # noqa: ANN202 - a key function per order
        if order == "year":
            return lambda i: (self._rows[i].year or 0, self._rows[i].authors)
        if order == "title":
            return lambda i: self._rows[i].title
        if order == "key":
            return lambda i: self._rows[i].entry.key.casefold()
        if order == "type":
            return lambda i: (self._rows[i].entry.entry_type, self._rows[i].entry.key.casefold())
        if order == "author":
            return lambda i: (self._rows[i].first_author, self._rows[i].year or 0)
        return lambda i: i

    def _order(self, order: str) -> list[int]:
        if order not in self._orders:
            self._orders[order] = sorted(range(len(self._rows)), key=self._sort_key(order))
        return self._orders[order]

    def position(self, key: str, order: str, descending: bool = False) -> int | None:
        """Where ``key`` stands (0-based) in the unfiltered list sorted by ``order``."""
        if order not in self._ranks:
            self._ranks[order] = {
                self._rows[index].entry.key: rank for rank, index in enumerate(self._order(order))
            }
        rank = self._ranks[order].get(key)
        if rank is None or not descending:
            return rank
        return len(self._rows) - 1 - rank

    def matching(self, query: Query) -> list[BibEntry]:
        """Every entry matching the query's filters, in its order (no paging).

        Raises ValueError for a malformed year filter.
        """
        query = query.normalized()
        terms = fold(query.text).split()
        author = fold(query.author)
        years = _year_filter(query.year) if query.year else None
        rows = [
            self._rows[index]
            for index in self._order(query.sort)
            if self._matches(self._rows[index], terms, author, years, query.entry_type)
        ]
        if query.descending:
            rows.reverse()
        return [row.entry for row in rows]

    def search(self, query: Query) -> Page:
        """One page of :meth:`matching`."""
        query = query.normalized()
        matches = self.matching(query)
        start = (query.page - 1) * query.per_page
        return Page(
            matches[start : start + query.per_page], len(matches), query.page, query.per_page
        )

    @staticmethod
    def _matches(
        row: _Row, terms: list[str], author: str, years: tuple[int, int] | None, entry_type: str
    ) -> bool:
        if entry_type and row.entry.entry_type != entry_type:
            return False
        if years and (row.year is None or not years[0] <= row.year <= years[1]):
            return False
        if author and author not in row.authors:
            return False
        return all(term in row.everything for term in terms)


__all__ = ["MAX_PER_PAGE", "Page", "Query", "SORT_ORDERS", "SearchIndex"]
