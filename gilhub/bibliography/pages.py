"""The bibliography's pages: ``/hub/bib`` (the list), ``/hub/bib/KEY``, ``/hub/bib.bib``,
``/hub/bib-add`` (the JSON API is in :mod:`.api`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.web import HTTPError

from gilhub.bibliography.format import entry_bibtex, format_entry_html
from gilhub.bibliography.library import BibEntry, ParsedLibrary
from gilhub.bibliography.search import SORT_ORDERS, Query
from gilhub.bibliography.web import MAX_PROBLEMS_SHOWN, BibMixin
from gilhub.bibliography.writer import (
    FORM_ENTRY_TYPES,
    FORM_FIELDS,
    BibInputError,
    form_type_fields,
    recent_changes,
)
from gilhub.handlers.base import BaseHandler, login_required


def _bibtex_of(entries: Iterable[BibEntry]) -> str:
    return "\n".join(entry_bibtex(entry) for entry in entries)


class BibPageHandler(BibMixin, BaseHandler):
    """``/hub/bib``: the formatted, filterable, paginated list."""

    @login_required
    async def get(self) -> None:
        library = await self.library()
        query = self.query()
        around = self.get_argument("around", "")
        if around:
            self.redirect_to_page_of(library, query, around)
            return
        page = self.search(library, query)
        params = {
            key: value
            for key, value in (
                ("q", query.text),
                ("author", query.author),
                ("year", query.year),
                ("type", query.entry_type),
                ("sort", query.sort if query.sort != "author" else ""),
                ("desc", "1" if query.descending else ""),
                ("per_page", str(query.per_page) if query.per_page != 50 else ""),
            )
            if value
        }
        changes = await recent_changes(self.hub.db, limit=10)
        await self.render_template(
            "bib.html",
            library=library,
            page=page,
            query=query,
            params=params,
            page_url=lambda n: f"{self.bib_url}?{urlencode({**params, 'page': n})}",
            formatted=[(entry, format_entry_html(entry)) for entry in page.entries],
            bibtex=entry_bibtex,
            problems=library.problems[:MAX_PROBLEMS_SHOWN],
            types=library.index.types,
            sort_orders=SORT_ORDERS,
            changes=changes,
            bib_url=self.bib_url,
            file_name=self.bibliography.file.path.name,
        )

    def redirect_to_page_of(self, library: ParsedLibrary, query: Query, key: str) -> None:
        """``/hub/bib?around=KEY``: the page of the unfiltered list holding KEY, at its anchor.

        ``bib.js`` comes here when ``/hub/bib#KEY`` names an entry not on the page shown.
        """
        rank = library.index.position(key, query.sort, query.descending)
        if rank is None:
            self.redirect(f"{self.bib_url}/{quote(key, safe='')}")
            return
        params = {"page": rank // query.per_page + 1}
        if query.sort != "author":
            params["sort"] = query.sort
        if query.descending:
            params["desc"] = 1
        if query.per_page != 50:
            params["per_page"] = query.per_page
        self.redirect(f"{self.bib_url}?{urlencode(params)}#{quote(key, safe='')}")


class BibEntryPageHandler(BibMixin, BaseHandler):
    """``/hub/bib/KEY``: one entry, its BibTeX, where it is in the file, who added it."""

    @login_required
    async def get(self, key: str) -> None:
        library = await self.library()
        entry = self.entry_or_404(library, key)
        await self.render_template(
            "bib_entry.html",
            entry=entry,
            html=format_entry_html(entry),
            bibtex=entry_bibtex(entry),
            problems=[p for p in library.problems if p.key == entry.key],
            history=await recent_changes(self.hub.db, limit=20, key=entry.key),
            bib_url=self.bib_url,
        )


class BibDownloadHandler(BibMixin, BaseHandler):
    """``/hub/bib.bib``: the whole file as it is, or a selection (``?keys=a,b`` or filters)."""

    @login_required
    async def get(self) -> None:
        library = await self.library()
        keys = [key for key in self.get_argument("keys", "").split(",") if key.strip()]
        filtered = any(self.get_argument(name, "") for name in ("q", "author", "year", "type"))
        self.set_header("Content-Type", "application/x-bibtex; charset=utf-8")
        if not keys and not filtered:
            name = self.bibliography.file.path.name
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            await self.finish(await asyncio.to_thread(self.bibliography.file.read_bytes))
            return
        if keys:
            missing = [key for key in keys if key not in library]
            if missing:
                raise HTTPError(404, f"Not in the bibliography: {', '.join(missing)}")
            entries = [library.entries[key] for key in keys]
        else:
            try:
                entries = library.index.matching(self.query())
            except ValueError as error:
                raise HTTPError(400, str(error)) from error
        self.set_header("Content-Disposition", 'attachment; filename="selection.bib"')
        await self.finish(_bibtex_of(entries))


class BibAddHandler(BibMixin, BaseHandler):
    """``/hub/bib-add``: one entry by form, pasted BibTeX, or an uploaded ``.bib`` to merge."""

    body_limit = None  # BibTeX files: up to the hub's max_body_size

    @login_required
    async def get(self) -> None:
        await self.show_form(**self.take_shown())

    def show_form(self, **context: Any) -> Any:
        defaults = {
            "form": {},
            "errors": [],
            "result": None,
            "pending_bibtex": "",
            "mode": self.get_argument("mode", "form"),
        }
        return self.render_template(
            "bib_add.html",
            entry_types=FORM_ENTRY_TYPES,
            form_fields=FORM_FIELDS,
            type_fields=form_type_fields(),
            bib_url=self.bib_url,
            **{**defaults, **context},
        )

    def form_values(self) -> dict[str, str]:
        return {name: self.get_body_argument(name, "") for name in self.request.body_arguments}

    def submitted_bibtex(self, mode: str) -> bytes:
        if mode == "upload" and "bibfile" in self.request.files:
            return self.request.files["bibfile"][0]["body"]
        return self.get_body_argument("bibtex", "").encode("utf-8")

    @login_required
    async def post(self) -> None:
        mode = self.get_body_argument("mode", "form")
        writer = self.bibliography.writer
        try:
            if mode == "form":
                result = await writer.add_from_form(self.form_values(), self.current_user)
            elif mode in ("paste", "upload"):
                bibtex = self.submitted_bibtex(mode)
                replace = frozenset(self.get_body_arguments("replace"))
                result = await writer.merge(bibtex, self.current_user, mode, replace)
            else:
                raise HTTPError(400, "mode must be form, paste or upload")
        except BibInputError as error:
            self.set_status(400)
            await self.show_form(form=self.form_values(), errors=error.errors, mode=mode)
            return
        if not result.conflicts:  # POST/redirect/GET: the outcome is shown after a 303
            self.redirect_after_post(
                f"{self.request.path}?mode={mode}", result=result.summary(), mode=mode
            )
            return
        pending = "\n".join(duplicate.new_bibtex for duplicate in result.conflicts)
        self.set_status(409)  # shown at once: the page keeps what is still to be decided
        await self.show_form(result=result, pending_bibtex=pending, mode=mode)


_KEY = r"([^/]+)"

handlers = [
    (r"/hub/bib", BibPageHandler),
    (r"/hub/bib\.bib", BibDownloadHandler),
    (r"/hub/bib-add", BibAddHandler),
    (rf"/hub/bib/{_KEY}", BibEntryPageHandler),
]
