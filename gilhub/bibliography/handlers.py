"""The bibliography's pages (``/hub/bib``…) and JSON API (``/hub/api/bib``…)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.web import HTTPError

from gilhub.apihandlers.base import APIHandler
from gilhub.bibliography.format import (
    cite_label,
    entry_bibtex,
    format_entry_html,
    format_entry_text,
)
from gilhub.bibliography.library import BibEntry, ParsedLibrary, Problem
from gilhub.bibliography.search import MAX_PER_PAGE, SORT_ORDERS, Page, Query
from gilhub.bibliography.service import BibService, lab_bibliography
from gilhub.bibliography.writer import (
    FORM_ENTRY_TYPES,
    FORM_FIELDS,
    BibInputError,
    MergeResult,
    form_type_fields,
    recent_changes,
)
from gilhub.handlers.base import BaseHandler, login_required

#: Upper bound for the problems listed at once (a badly broken file can have thousands).
MAX_PROBLEMS_SHOWN = 500


class BibMixin:
    """What the bibliography's page and API handlers share."""

    hub: Any
    get_argument: Any

    @property
    def service(self) -> BibService:
        return lab_bibliography(self.hub)

    async def library(self) -> ParsedLibrary:
        return await self.service.bibliography.library()

    @property
    def bib_url(self) -> str:
        return self.hub.hub_prefix + "bib"

    def query(self) -> Query:
        def number(name: str, fallback: int) -> int:
            value = self.get_argument(name, "")
            if not value:
                return fallback
            if not value.isdigit():
                raise HTTPError(400, f"{name} must be a positive whole number")
            return int(value)

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
            page=number("page", 1),
            per_page=min(MAX_PER_PAGE, number("per_page", 50)),
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
            file_name=self.service.bibliography.path.name,
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
            name = self.service.bibliography.path.name
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            await self.finish(await asyncio.to_thread(self.service.bibliography.read_bytes))
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
        await self.show_form()

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
        writer = self.service.writer
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
        pending = ""
        if result.conflicts:
            pending = "\n".join(duplicate.new_bibtex for duplicate in result.conflicts)
            self.set_status(409)
        await self.show_form(result=result, pending_bibtex=pending, mode=mode)


# -- JSON API --------------------------------------------------------------------


def entry_model(entry: BibEntry, with_html: bool = True) -> dict[str, Any]:
    model: dict[str, Any] = {
        "key": entry.key,
        "type": entry.entry_type,
        "fields": dict(entry.fields),
        "line": entry.line,
        "label": cite_label(entry),
    }
    if with_html:
        model["html"] = str(format_entry_html(entry))
        model["text"] = format_entry_text(entry)
    return model


def result_model(result: MergeResult) -> dict[str, Any]:
    return {
        "added": result.added,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
        "duplicates": [
            {"key": d.key, "existing_key": d.existing_key, "existing_bibtex": d.existing_bibtex}
            for d in result.conflicts
        ],
    }


class BibAPIHandler(BibMixin, APIHandler):
    """``GET /hub/api/bib``: search (``?only=keys``: all keys); ``POST``: add BibTeX
    ``{"bibtex": …, "replace": […]}``."""

    token_scopes = ("read:bib", "bib")
    body_limit = None  # BibTeX files: up to the hub's max_body_size

    @login_required
    async def get(self) -> None:
        library = await self.library()
        if self.get_argument("only", "") == "keys":
            # every citable key, for recognising bare @key in JupyterLab
            self.write_json({"sha256": library.sha256, "keys": list(library.entries)})
            return
        query = self.query()
        page = self.search(library, query)
        with_html = self.get_argument("format", "") == "html"
        self.write_json(
            {
                "total": page.total,
                "page": page.page,
                "per_page": page.per_page,
                "pages": page.pages,
                "sha256": library.sha256,
                "entries": [entry_model(entry, with_html) for entry in page.entries],
                "problems": [
                    _problem_model(problem) for problem in library.problems[:MAX_PROBLEMS_SHOWN]
                ],
            }
        )

    @login_required
    async def post(self) -> None:
        body = self.get_json_body()
        if not isinstance(body, dict) or not isinstance(body.get("bibtex"), str):
            raise HTTPError(400, 'Send {"bibtex": "@article{...}", "replace": ["key", ...]}.')
        replace = body.get("replace") or []
        if not isinstance(replace, list) or not all(isinstance(k, str) for k in replace):
            raise HTTPError(400, "replace must be a list of keys")
        try:
            result = await self.service.writer.merge(
                body["bibtex"], self.current_user, "api", frozenset(replace)
            )
        except BibInputError as error:
            self.write_json({"status": 400, "message": str(error), "errors": error.errors}, 400)
            return
        self.write_json(result_model(result), 409 if result.conflicts else 201)


def _problem_model(problem: Problem) -> dict[str, Any]:
    return {
        "line": problem.line,
        "kind": problem.kind,
        "message": problem.message,
        "key": problem.key,
        "excerpt": problem.excerpt,
    }


class BibEntryAPIHandler(BibMixin, APIHandler):
    """``GET /hub/api/bib/KEY``: JSON; ``?format=html`` the formatted reference (tooltips);
    ``?format=bibtex`` its BibTeX."""

    token_scopes = ("read:bib", "bib")

    @login_required
    async def get(self, key: str) -> None:
        library = await self.library()
        entry = self.entry_or_404(library, key)
        output = self.get_argument("format", "json")
        if output == "html":
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.set_header("Cache-Control", "private, max-age=10")
            await self.finish(str(format_entry_html(entry)))
        elif output == "bibtex":
            self.set_header("Content-Type", "application/x-bibtex; charset=UTF-8")
            await self.finish(entry_bibtex(entry))
        elif output == "json":
            self.write_json(entry_model(entry))
        else:
            raise HTTPError(400, "format must be json, html or bibtex")


_KEY = r"([^/]+)"

handlers = [
    (r"/hub/bib", BibPageHandler),
    (r"/hub/bib\.bib", BibDownloadHandler),
    (r"/hub/bib-add", BibAddHandler),
    (rf"/hub/bib/{_KEY}", BibEntryPageHandler),
    (r"/hub/api/bib", BibAPIHandler),
    (rf"/hub/api/bib/{_KEY}", BibEntryAPIHandler),
]
