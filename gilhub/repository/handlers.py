"""The repository on the web: REST API under ``/hub/api/repo/…``, pages under ``/hub/repo/…``.

API calls authenticate with a token or with the login cookie plus XSRF (as
every hub handler does); errors come back as JSON with the details a client
needs to act (who pushed what since, whether it merges, where to write beside).
The rendered view of a notebook is served as its own document with a strict
Content-Security-Policy and shown in a sandboxed iframe: even HTML the
sanitiser let through can neither run scripts from elsewhere nor reach the
hub with the user's cookie.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.web import HTTPError, StaticFileHandler

from gilhub.apihandlers.base import APIHandler
from gilhub.bibliography.preprocessor import hub_citation_preprocessor
from gilhub.contents.schema import files as content_files
from gilhub.handlers.base import BaseHandler, admin_required, login_required
from gilhub.repository import render, service, store
from gilhub.repository.errors import BadRequest, Conflict, RepositoryError
from gilhub.repository.paths import normalize_path, normalize_prefix

_CONFIG_KEY = "gilhub_repository_config"
# Found without importing the package, which would import all of jupyter_server (~1 s).
MATHJAX_DIR = Path(importlib.util.find_spec("jupyter_server_mathjax").origin).parent / "static"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
MAX_PAGE = 1000
# Scripts (MathJax) run in the view's frame; links (citations) may leave it only
# for the whole window, and only when the reader clicks them.
VIEW_SANDBOX = "allow-scripts allow-top-navigation-by-user-activation"
VIEW_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)


class RepositoryHTTPError(HTTPError):
    """An HTTPError that carries a repository error's details to the JSON answer."""

    def __init__(self, error: RepositoryError) -> None:
        super().__init__(error.status, error.message.replace("%", "%%"))
        self.details = error.details


def repository_errors(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn the repository's errors into HTTP errors of the same status."""

    @functools.wraps(method)
    async def wrapper(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        except RepositoryError as error:
            raise RepositoryHTTPError(error) from None

    return wrapper


class RepositoryMixin:
    """What the repository's pages and API handlers share."""

    hub: Any
    current_user: Any
    settings: dict[str, Any]

    @property
    def engine(self) -> AsyncEngine:
        return self.hub.db

    @property
    def config(self) -> service.RepositoryConfig:
        config = self.settings.get(_CONFIG_KEY)
        if config is None:
            config = self.settings[_CONFIG_KEY] = service.RepositoryConfig(parent=self.hub)
        return config

    @property
    def actor(self) -> store.Actor:
        return store.Actor(self.current_user.name, self.current_user.is_admin)

    async def entry(self, path: str) -> store.Entry:
        async with self.engine.connect() as conn:
            return await store.require_entry(conn, normalize_path(path))

    async def version_content(self, entry: store.Entry, number: int | None) -> store.Version:
        async with self.engine.connect() as conn:
            return await store.get_version(conn, entry, number)

    async def requested_version(self, path: str) -> tuple[store.Entry, store.Version]:
        """The entry at ``path`` and the version asked for by ``?version=`` (default: newest)."""
        entry = await self.entry(path)
        number = _int_or_none(self.get_query_argument("version", None), "version")
        return entry, await self.version_content(entry, number)

    async def requested_history(
        self, path: str, limit: int
    ) -> tuple[store.Entry, list[store.Version]]:
        """The entry at ``path`` and ``limit`` versions, older than ``?before=`` if given."""
        entry = await self.entry(path)
        before = _int_or_none(self.get_query_argument("before", None), "before")
        async with self.engine.connect() as conn:
            return entry, await store.history(conn, entry, limit=limit, before=before)

    async def requested_diff(self, path: str) -> RequestedDiff:
        """The diff asked for by ``?from=&to=&outputs=`` (default: the newest change)."""
        entry = await self.entry(path)
        new = _int_or_none(self.get_query_argument("to", None), "to") or entry.head
        old = _int_or_none(self.get_query_argument("from", None), "from") or max(new - 1, 1)
        outputs = _flag(self.get_query_argument("outputs", "0"))
        old_version = await self.version_content(entry, old)
        new_version = await self.version_content(entry, new)
        rows = await diff_contents(entry.kind, old_version.content, new_version.content, outputs)
        return RequestedDiff(entry, old, new, outputs, rows)


@dataclass
class RequestedDiff:
    entry: store.Entry
    old: int
    new: int
    outputs: bool
    rows: list[render.CellDiff]


async def diff_contents(kind: str, old: bytes, new: bytes, outputs: bool) -> list[render.CellDiff]:
    if kind == "notebook":
        return await asyncio.to_thread(render.diff_cells, old, new, outputs=outputs)
    return await asyncio.to_thread(render.diff_text, old, new)


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a whole number, not {value!r}") from None


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


# -- REST API --------------------------------------------------------------------


class RepoAPIHandler(RepositoryMixin, APIHandler):
    token_scopes = ("read:repo", "repo")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, RepositoryHTTPError):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            body = {"status": status_code, "message": self.error_message(kwargs["exc_info"])}
            self.finish(json.dumps({**error.details, **body}, default=str))
            return
        super().write_error(status_code, **kwargs)

    def body(self) -> dict[str, Any]:
        data = self.get_json_body()
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        return data

    def limit(self, default: int = 50) -> int:
        limit = _int_or_none(self.get_query_argument("limit", None), "limit") or default
        return max(1, min(limit, MAX_PAGE))


class XsrfAPIHandler(RepoAPIHandler):
    """The hub's XSRF token, for scripts running in a user's JupyterLab.

    Under ``/user/NAME/`` the page also sees jupyter_server's own ``_xsrf``
    cookie, so it cannot tell from ``document.cookie`` which one is the hub's.
    Another site cannot read this answer (same-origin policy), so handing the
    token out to a logged-in same-origin caller keeps the XSRF protection.
    """

    @login_required
    async def get(self) -> None:
        self.write_json({"xsrf": self.xsrf_token.decode("ascii")})


class BrowseAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        prefix = normalize_prefix(self.get_query_argument("prefix", ""))
        async with self.engine.connect() as conn:
            folder = await store.browse(conn, prefix)
        folders = [{"name": name, "count": count} for name, count in folder.folders]
        entries = [entry.as_json() for entry in folder.entries]
        self.write_json({"prefix": prefix, "folders": folders, "entries": entries})


class EntryAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry = await self.entry(path)
        async with self.engine.connect() as conn:
            head = await store.get_version(conn, entry, with_content=False)
        self.write_json({**entry.as_json(), "head_version": head.as_json()})

    @login_required
    @repository_errors
    async def patch(self, path: str) -> None:
        """Change tags (``{"tags": [...]}``) and/or rename (``{"path": "new/path"}``)."""
        body = self.body()
        path = normalize_path(path)
        async with self.engine.begin() as conn:
            if "tags" in body:
                if not isinstance(body["tags"], list) or not all(
                    isinstance(tag, str) for tag in body["tags"]
                ):
                    raise BadRequest("tags must be a list of strings")
                entry = await store.set_tags(conn, path, body["tags"], self.actor)
            if "path" in body:
                new_path = normalize_path(str(body["path"]), what="new path")
                entry = await store.rename(conn, path, new_path, self.actor)
            if "tags" not in body and "path" not in body:
                raise BadRequest("nothing to change: give tags or path")
        self.write_json(entry.as_json())

    @login_required
    @repository_errors
    async def delete(self, path: str) -> None:
        async with self.engine.begin() as conn:
            entry = await store.delete(conn, normalize_path(path), self.actor)
        self.write_json(entry.as_json())


class HistoryAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry, versions = await self.requested_history(path, self.limit(100))
        self.write_json(
            {"entry": entry.as_json(), "versions": [version.as_json() for version in versions]}
        )


class ContentAPIHandler(RepoAPIHandler):
    """The stored bytes of a version (the newest by default)."""

    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry, version = await self.requested_version(path)
        kind = (
            "application/x-ipynb+json" if entry.kind == "notebook" else "application/octet-stream"
        )
        self.set_header("Content-Type", kind)
        self.set_header("X-Gilhub-Version", str(version.number))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", "attachment")
        self.finish(version.content)


class DiffAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        diff = await self.requested_diff(path)
        cells = [
            {
                "status": row.status,
                "cell_type": row.cell_type,
                "source": [[line.tag, line.text] for line in row.source],
                "outputs": [[line.tag, line.text] for line in row.outputs],
            }
            for row in diff.rows
        ]
        self.write_json({"path": diff.entry.path, "from": diff.old, "to": diff.new, "cells": cells})


class PushAPIHandler(RepoAPIHandler):
    """``{"source", "path", "message", "base", "keep_outputs", "label"}`` -> 201, 200 or 409."""

    @login_required
    @repository_errors
    async def post(self) -> None:
        body = self.body()
        keep = body.get("keep_outputs")
        outcome = await service.push_from_storage(
            self.engine,
            self.config,
            self.current_user,
            source=str(body.get("source") or ""),
            target=body.get("path") or None,
            message=str(body.get("message") or ""),
            base=_int_or_none(body.get("base"), "base"),
            keep_outputs=None if keep is None else bool(keep),
            label=body.get("label") or None,
        )
        self.write_json(outcome.as_json(), status=201 if outcome.result.created else 200)


class MergeAPIHandler(RepoAPIHandler):
    """Push the clean nbdime merge of my copy (from ``base``) with the newest version."""

    @login_required
    @repository_errors
    async def post(self) -> None:
        body = self.body()
        base = _int_or_none(body.get("base"), "base")
        if not base:
            raise BadRequest("a merge needs the base version your copy started from")
        outcome = await service.push_merge(
            self.engine,
            self.config,
            self.current_user,
            source=str(body.get("source") or ""),
            target=str(body.get("path") or body.get("source") or ""),
            base=base,
            message=str(body.get("message") or ""),
        )
        self.write_json(outcome.as_json(), status=201)


class PullAPIHandler(RepoAPIHandler):
    """``{"path", "version", "dest", "on_exists": "fail"|"beside"|"overwrite"}``."""

    @login_required
    @repository_errors
    async def post(self) -> None:
        body = self.body()
        outcome = await service.pull_to_storage(
            self.engine,
            self.current_user,
            path=str(body.get("path") or ""),
            version=_int_or_none(body.get("version"), "version"),
            dest=body.get("dest") or None,
            on_exists=str(body.get("on_exists") or "fail"),
        )
        self.write_json(outcome.as_json(), status=201 if outcome.written else 200)


class SearchAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        text = self.get_query_argument("q", "")
        offset = _int_or_none(self.get_query_argument("offset", None), "offset") or 0
        async with self.engine.connect() as conn:
            hits = await store.search(conn, text, limit=self.limit(), offset=max(offset, 0))
        results = [{**hit.entry.as_json(), "rank": hit.rank} for hit in hits]
        self.write_json({"query": text, "results": results})


class ActivityAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        before = _int_or_none(self.get_query_argument("before", None), "before")
        actor = self.get_query_argument("user", None)
        async with self.engine.connect() as conn:
            feed = await store.activity(conn, limit=self.limit(), before=before, actor=actor)
        self.write_json({"events": [event.as_json() for event in feed]})


class LabelAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def put(self, path: str) -> None:
        body = self.body()
        number = _int_or_none(body.get("version"), "version")
        if number is None:
            raise BadRequest("give the version to label")
        async with self.engine.begin() as conn:
            version = await store.set_label(
                conn, normalize_path(path), number, body.get("label"), self.actor
            )
        self.write_json(version.as_json())


class DeletedAPIHandler(RepoAPIHandler):
    token_scopes = ("admin:repo", "admin:repo")

    @admin_required
    @repository_errors
    async def get(self) -> None:
        async with self.engine.connect() as conn:
            deleted = await store.deleted_entries(conn, limit=self.limit(200))
        self.write_json({"entries": [entry.as_json() for entry in deleted]})

    @admin_required
    @repository_errors
    async def post(self) -> None:
        """Restore ``{"id": N, "path": optional new path}``."""
        body = self.body()
        entry_id = _int_or_none(body.get("id"), "id")
        if entry_id is None:
            raise BadRequest("give the id of the deleted entry")
        new_path = normalize_path(body["path"]) if body.get("path") else None
        async with self.engine.begin() as conn:
            entry = await store.restore(conn, entry_id, self.actor, new_path)
        self.write_json(entry.as_json())


# -- pages ---------------------------------------------------------------------------


class RepoPageHandler(RepositoryMixin, BaseHandler):
    def repo_url(self, page: str, path: str = "", /, **query: Any) -> str:
        url = f"{self.hub.hub_prefix}repo/{page}"
        if path:
            url += "/" + quote(path)
        query = {key: value for key, value in query.items() if value not in (None, "")}
        return url + ("?" + urlencode(query) if query else "")

    def template_namespace(self) -> dict[str, Any]:
        return {**super().template_namespace(), "repo_url": self.repo_url}

    def lab_url(self, path: str) -> str:
        return f"{self.hub.base_url}user/{quote(self.current_user.name)}/lab/tree/{quote(path)}"


class RepoRootHandler(RepoPageHandler):
    @login_required
    async def get(self) -> None:
        self.redirect(self.repo_url("tree"))


class TreePageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self, prefix: str = "") -> None:
        prefix = normalize_prefix(prefix or "")
        async with self.engine.connect() as conn:
            folder = await store.browse(conn, prefix)
            feed = await store.activity(conn, limit=10) if not prefix else []
        parts = prefix.strip("/").split("/") if prefix else []
        crumbs = [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]
        await self.render_template("repo_tree.html", folder=folder, crumbs=crumbs, feed=feed)


class SearchPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        text = self.get_query_argument("q", "")
        async with self.engine.connect() as conn:
            hits = await store.search(conn, text, limit=100)
        await self.render_template("repo_search.html", query=text, hits=hits)


class EntryPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry, versions = await self.requested_history(path, 100)
        may_change = self.actor.is_admin or self.actor.name == entry.author
        await self.render_template(
            "repo_entry.html", entry=entry, versions=versions, may_change=may_change
        )

    @login_required
    @repository_errors
    async def post(self, path: str) -> None:
        """The entry page's forms: tags, rename, delete, label."""
        action = self.get_body_argument("action", "")
        path = normalize_path(path)
        async with self.engine.begin() as conn:
            if action == "tags":
                tags = self.get_body_argument("tags", "").replace(",", " ").split()
                entry = await store.set_tags(conn, path, tags, self.actor)
            elif action == "rename":
                new_path = normalize_path(self.get_body_argument("new_path", ""), what="new path")
                entry = await store.rename(conn, path, new_path, self.actor)
            elif action == "label":
                number = _int_or_none(self.get_body_argument("version", ""), "version") or 0
                label = self.get_body_argument("label", "")
                await store.set_label(conn, path, number, label, self.actor)
                entry = await store.require_entry(conn, path)
            elif action == "delete":
                await store.delete(conn, path, self.actor)
                self.redirect(self.repo_url("tree"))
                return
            else:
                raise BadRequest(f"unknown action {action!r}")
        self.redirect(self.repo_url("entry", entry.path))


class ViewPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry, version = await self.requested_version(path)
        text = None
        if entry.kind == "file":
            text = version.content.decode("utf-8", errors="replace")
        await self.render_template("repo_view.html", entry=entry, shown=version, text=text)


class RenderedHandler(RepoPageHandler):
    """The nbconvert rendering of a version, for the view page's sandboxed iframe."""

    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        entry, version = await self.requested_version(path)
        if entry.kind != "notebook":
            raise BadRequest("only notebooks are rendered")
        mathjax = f"{self.hub.hub_prefix}repo/mathjax/MathJax.js?config={MATHJAX_CONFIG}"
        mathjax_config_url = self.static_url("repo/mathjax-config.js")

        def render_with_citations() -> str:
            # Both parsing the bibliography (once per change) and nbconvert block.
            return render.render_view(
                version.content,
                mathjax_url=self.config.mathjax_url or mathjax,
                mathjax_config_url=mathjax_config_url,
                preprocessors=[hub_citation_preprocessor(self.hub)],
            )

        html = await asyncio.to_thread(render_with_citations)
        self.set_header("Content-Security-Policy", f"{VIEW_CSP}; sandbox {VIEW_SANDBOX}")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(html)


class MathJaxHandler(StaticFileHandler):
    """MathJax from the ``jupyter-server-mathjax`` package, so views work offline.

    Public (it is a published library) and readable cross-origin: the view is a
    sandboxed document with an opaque origin, whose font loads are CORS requests.
    """

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")


class DiffPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self, path: str) -> None:
        await self.render_template("repo_diff.html", diff=await self.requested_diff(path))


class PushPageHandler(RepoPageHandler):
    """A list of my notebooks and files to push, and the push itself."""

    @login_required
    async def get(self) -> None:
        await self.render_template("repo_push.html", files=await self.my_files(), error=None)

    async def my_files(self) -> list[Any]:
        query = (
            select(content_files.c.path, content_files.c.size, content_files.c.last_modified)
            .where(content_files.c.owner == self.current_user.db_role)
            .order_by(content_files.c.path)
            .limit(2000)
        )
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    @login_required
    async def post(self) -> None:
        source = self.get_body_argument("source", "")
        target = self.get_body_argument("path", "") or source
        try:
            outcome = await service.push_from_storage(
                self.engine,
                self.config,
                self.current_user,
                source=source,
                target=target,
                message=self.get_body_argument("message", ""),
                base=_int_or_none(self.get_body_argument("base", ""), "base"),
                keep_outputs=_flag(self.get_body_argument("keep_outputs", "0")),
                label=self.get_body_argument("label", "") or None,
            )
        except Conflict as conflict:
            self.redirect(
                self.repo_url(
                    "conflict", source=source, path=target, base=conflict.details.get("base") or ""
                )
            )
            return
        except RepositoryError as error:
            self.set_status(error.status)
            await self.render_template(
                "repo_push.html", files=await self.my_files(), error=error.message
            )
            return
        self.redirect(self.repo_url("entry", outcome.result.entry.path))


class ConflictPageHandler(RepoPageHandler):
    """Who pushed what since my base, their changes, mine, and nbdime's merge if clean."""

    @login_required
    @repository_errors
    async def get(self) -> None:
        source = normalize_path(self.get_query_argument("source", ""), what="source path")
        target = normalize_path(self.get_query_argument("path", "") or source)
        base = _int_or_none(self.get_query_argument("base", None), "base")
        entry = await self.entry(target)
        async with self.engine.connect() as conn:
            since = await store.versions_since(conn, entry.id, base or 0)
        context: dict[str, Any] = {"source": source, "entry": entry, "base": base, "since": since}
        if base and entry.kind == "notebook":
            base_content, mine, theirs, merged, _ = await service.merge_preview(
                self.engine, self.config, self.current_user, source=source, target=target, base=base
            )
            context["theirs"] = await diff_contents("notebook", base_content, theirs, False)
            context["mine"] = await diff_contents("notebook", base_content, mine, False)
            context["merged"] = (
                await diff_contents("notebook", base_content, merged.content, False)
                if merged.content
                else None
            )
            context["conflicts"] = merged.conflicts
        await self.render_template("repo_conflict.html", **context)


class MergePageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def post(self) -> None:
        outcome = await service.push_merge(
            self.engine,
            self.config,
            self.current_user,
            source=self.get_body_argument("source", ""),
            target=self.get_body_argument("path", ""),
            base=_int_or_none(self.get_body_argument("base", ""), "base") or 0,
            message=self.get_body_argument("message", ""),
        )
        self.redirect(self.repo_url("entry", outcome.result.entry.path))


class PullPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def post(self) -> None:
        path = self.get_body_argument("path", "")
        dest = self.get_body_argument("dest", "") or path
        version = _int_or_none(self.get_body_argument("version", ""), "version")
        try:
            outcome = await service.pull_to_storage(
                self.engine,
                self.current_user,
                path=path,
                version=version,
                dest=dest,
                on_exists=self.get_body_argument("on_exists", "fail"),
            )
        except Conflict as conflict:
            self.set_status(409)
            await self.render_template(
                "repo_pull.html",
                outcome=None,
                path=normalize_path(path),
                dest=dest,
                pull_version=version,
                beside=conflict.details.get("beside"),
                message=conflict.message,
            )
            return
        await self.render_template(
            "repo_pull.html", outcome=outcome, lab_url=self.lab_url(outcome.path)
        )


class ActivityPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        before = _int_or_none(self.get_query_argument("before", None), "before")
        async with self.engine.connect() as conn:
            feed = await store.activity(conn, limit=100, before=before)
        await self.render_template("repo_activity.html", feed=feed)


class DeletedPageHandler(RepoPageHandler):
    @admin_required
    @repository_errors
    async def get(self) -> None:
        async with self.engine.connect() as conn:
            deleted = await store.deleted_entries(conn)
        await self.render_template("repo_deleted.html", deleted=deleted)

    @admin_required
    @repository_errors
    async def post(self) -> None:
        entry_id = _int_or_none(self.get_body_argument("id", ""), "id") or 0
        new_path = self.get_body_argument("path", "") or None
        async with self.engine.begin() as conn:
            entry = await store.restore(
                conn, entry_id, self.actor, normalize_path(new_path) if new_path else None
            )
        self.redirect(self.repo_url("entry", entry.path))


_API = r"/hub/api/repo"
_PAGES = r"/hub/repo"

handlers: list[tuple] = [
    (_API + r"/xsrf", XsrfAPIHandler),
    (_API + r"/entries", BrowseAPIHandler),
    (_API + r"/entries/(.+)", EntryAPIHandler),
    (_API + r"/history/(.+)", HistoryAPIHandler),
    (_API + r"/content/(.+)", ContentAPIHandler),
    (_API + r"/diff/(.+)", DiffAPIHandler),
    (_API + r"/labels/(.+)", LabelAPIHandler),
    (_API + r"/push", PushAPIHandler),
    (_API + r"/merge", MergeAPIHandler),
    (_API + r"/pull", PullAPIHandler),
    (_API + r"/search", SearchAPIHandler),
    (_API + r"/activity", ActivityAPIHandler),
    (_API + r"/deleted", DeletedAPIHandler),
    (_PAGES + r"/?", RepoRootHandler),
    (_PAGES + r"/tree/?(.*)", TreePageHandler),
    (_PAGES + r"/search", SearchPageHandler),
    (_PAGES + r"/entry/(.+)", EntryPageHandler),
    (_PAGES + r"/view/(.+)", ViewPageHandler),
    (_PAGES + r"/rendered/(.+)", RenderedHandler),
    (_PAGES + r"/mathjax/(.*)", MathJaxHandler, {"path": str(MATHJAX_DIR)}),
    (_PAGES + r"/diff/(.+)", DiffPageHandler),
    (_PAGES + r"/push", PushPageHandler),
    (_PAGES + r"/conflict", ConflictPageHandler),
    (_PAGES + r"/merge", MergePageHandler),
    (_PAGES + r"/pull", PullPageHandler),
    (_PAGES + r"/activity", ActivityPageHandler),
    (_PAGES + r"/deleted", DeletedPageHandler),
]
