"""The bibliography's JSON API: ``/hub/api/bib`` (search, add) and ``/hub/api/bib/KEY``
(the pages are in :mod:`.pages`)."""

from __future__ import annotations

from typing import Any

from tornado.web import HTTPError

from gilhub.apihandlers.base import APIError, APIHandler
from gilhub.bibliography.format import (
    cite_label,
    entry_bibtex,
    format_entry_html,
    format_entry_text,
)
from gilhub.bibliography.library import BibEntry, Problem
from gilhub.bibliography.web import MAX_PROBLEMS_SHOWN, BibMixin
from gilhub.bibliography.writer import BibInputError, MergeResult
from gilhub.handlers.base import login_required


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
        body = self.json_object()
        if not isinstance(body.get("bibtex"), str):
            raise HTTPError(400, 'Send {"bibtex": "@article{...}", "replace": ["key", ...]}.')
        replace = body.get("replace") or []
        if not isinstance(replace, list) or not all(isinstance(k, str) for k in replace):
            raise HTTPError(400, "replace must be a list of keys")
        try:
            result = await self.bibliography.writer.merge(
                body["bibtex"], self.current_user, "api", frozenset(replace)
            )
        except BibInputError as error:
            raise APIError(400, str(error), errors=error.errors) from None
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


handlers = [
    (r"/hub/api/bib", BibAPIHandler),
    (r"/hub/api/bib/([^/]+)", BibEntryAPIHandler),
]
