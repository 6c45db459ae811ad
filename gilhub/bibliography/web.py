"""What the bibliography's pages (:mod:`.pages`) and JSON API (:mod:`.api`) share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tornado.web import HTTPError

from gilhub.bibliography.library import BibEntry, ParsedLibrary
from gilhub.bibliography.search import MAX_PER_PAGE, SORT_ORDERS, Page, Query

if TYPE_CHECKING:
    from gilhub.bibliography.service import LabBibliography

#: Upper bound for the problems listed at once (a badly broken file can have thousands).
MAX_PROBLEMS_SHOWN = 500


class BibMixin:
    """What the bibliography's page and API handlers share."""

    hub: Any
    get_argument: Any
    int_argument: Any

    @property
    def bibliography(self) -> LabBibliography:
        return self.hub.bibliography

    async def library(self) -> ParsedLibrary:
        return await self.bibliography.file.library()

    @property
    def bib_url(self) -> str:
        return self.hub.hub_prefix + "bib"

    def query(self) -> Query:
        sort = self.get_argument("sort", "author")
        if sort not in SORT_ORDERS:
            raise HTTPError(400, f"sort must be one of {', '.join(SORT_ORDERS)}")
        return Query(
            text=self.get_argument("q", ""),
            author=self.get_argument("author", ""),
            year=self.get_argument("year", ""),
            entry_type=self.get_argument("type", ""),
            sort=sort,
            descending=self.get_argument("desc", "") in ("1", "true", "yes"),
            page=self.int_argument("page", 1),
            per_page=min(MAX_PER_PAGE, self.int_argument("per_page", 50)),
        ).normalized()

    def search(self, library: ParsedLibrary, query: Query) -> Page:
        try:
            return library.index.search(query)
        except ValueError as error:
            raise HTTPError(400, str(error)) from error

    def entry_or_404(self, library: ParsedLibrary, key: str) -> BibEntry:
        entry = library.get(key)
        if entry is None:
            raise HTTPError(404, f"There is no entry {key!r} in the bibliography.")
        return entry
