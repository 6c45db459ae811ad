"""The repository's pages under ``/hub/repo/…`` (the REST API is in :mod:`.api`).

The rendered view of a notebook is served as its own document with a strict
Content-Security-Policy and shown in a sandboxed iframe: even HTML the
sanitiser let through can neither run scripts from elsewhere nor reach the
hub with the user's cookie.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from tornado.web import StaticFileHandler

from gilhub.contents import query as contents
from gilhub.handlers.base import BaseHandler, admin_required, login_required, whole_number
from gilhub.repository import render, store
from gilhub.repository.errors import BadRequest, Conflict, RepositoryError
from gilhub.repository.paths import normalize_path, normalize_prefix
from gilhub.repository.web import (
    RepositoryMixin,
    diff_contents,
    flag,
    repository_errors,
)

#: The push page lists at most this many of the user's files.
MAX_FILES_LISTED = 2000
#: Characters of a refused push's message carried (in the URL) to the conflict page's forms.
MAX_CARRIED_MESSAGE = 2000
# Found without importing the package, which would import all of jupyter_server (~1 s).
MATHJAX_DIR = Path(importlib.util.find_spec("jupyter_server_mathjax").origin).parent / "static"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
# Scripts (MathJax) run in the view's frame; links (citations) may leave it only
# for the whole window, and only when the reader clicks them.
VIEW_SANDBOX = "allow-scripts allow-top-navigation-by-user-activation"
VIEW_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)


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
        await self.render_template(
            "repo_search.html", query=text, hits=hits, snippet_html=render.snippet_html
        )


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
                number = whole_number(self.get_body_argument("version", ""), "version") or 0
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
        send_view(self, await notebook_view_html(self, version.content))


async def notebook_view_html(handler: BaseHandler, content: bytes) -> str:
    """The notebook ``content`` as a sanitised page (the repository's views, runs' reports):
    citations linked and References added, MathJax from the hub."""
    hub = handler.hub
    mathjax = f"{hub.hub_prefix}repo/mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    mathjax_config_url = handler.static_url("repo/mathjax-config.js")

    def render_with_citations() -> str:
        # Both parsing the bibliography (once per change) and nbconvert block. Imported
        # here, as render imports nbconvert: on the first view, not at the hub's start.
        from gilhub.bibliography.preprocessor import hub_citation_preprocessor

        return render.render_view(
            content,
            mathjax_url=hub.repository.config.mathjax_url or mathjax,
            mathjax_config_url=mathjax_config_url,
            preprocessors=[hub_citation_preprocessor(hub)],
        )

    return await asyncio.to_thread(render_with_citations)


def send_view(handler: BaseHandler, html: str) -> None:
    """Answer with a rendered view under a strict Content-Security-Policy that also
    sandboxes it: even HTML the sanitiser let through runs no script from elsewhere."""
    handler.set_header("Content-Security-Policy", f"{VIEW_CSP}; sandbox {VIEW_SANDBOX}")
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.finish(html)


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

    async def my_files(self) -> list[contents.FileRecord]:
        async with self.engine.connect() as conn:
            return await contents.list_files(conn, self.current_user.db_role, MAX_FILES_LISTED)

    @login_required
    async def post(self) -> None:
        source = self.get_body_argument("source", "")
        target = self.get_body_argument("path", "") or source
        try:
            outcome = await self.repository.push_from_storage(
                self.current_user,
                source=source,
                target=target,
                message=self.get_body_argument("message", ""),
                base=whole_number(self.get_body_argument("base", ""), "base"),
                keep_outputs=flag(self.get_body_argument("keep_outputs", "0")),
                label=self.get_body_argument("label", "") or None,
            )
        except Conflict as conflict:
            self.redirect(
                self.repo_url(
                    "conflict",
                    source=source,
                    path=target,
                    base=conflict.details.get("base") or "",
                    message=self.get_body_argument("message", "")[:MAX_CARRIED_MESSAGE],
                )
            )
            return
        except RepositoryError as error:
            self.set_status(repository_errors.status(error))
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
        base = self.query_number("base")
        entry = await self.entry(target)
        async with self.engine.connect() as conn:
            since = await store.versions_since(conn, entry.id, base or 0)
        context: dict[str, Any] = {
            "source": source,
            "entry": entry,
            "base": base,
            "since": since,
            # what the person wrote when pushing: the merge and the new path keep it
            "message": self.get_query_argument("message", "")[:MAX_CARRIED_MESSAGE],
            "free_path": await self.repository.free_path(entry.path),
        }
        if base and entry.kind == "notebook":
            base_content, mine, theirs, merged, _ = await self.repository.merge_preview(
                self.current_user, source=source, target=target, base=base
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
        outcome = await self.repository.push_merge(
            self.current_user,
            source=self.get_body_argument("source", ""),
            target=self.get_body_argument("path", ""),
            base=whole_number(self.get_body_argument("base", ""), "base") or 0,
            message=self.get_body_argument("message", ""),
        )
        self.redirect(self.repo_url("entry", outcome.result.entry.path))


class PullPageHandler(RepoPageHandler):
    """The pull form posts here, then the outcome is shown at ``GET`` (303 in between)."""

    @login_required
    async def get(self) -> None:
        shown = self.take_shown()
        if not shown:  # nothing was pulled just now (a bookmark, a reload much later)
            self.redirect(self.repo_url("tree"))
            return
        await self.render_template("repo_pull.html", **shown)

    @login_required
    @repository_errors
    async def post(self) -> None:
        path = self.get_body_argument("path", "")
        dest = self.get_body_argument("dest", "") or path
        version = whole_number(self.get_body_argument("version", ""), "version")
        try:
            outcome = await self.repository.pull_to_storage(
                self.current_user,
                path=path,
                version=version,
                dest=dest,
                on_exists=self.get_body_argument("on_exists", "fail"),
            )
        except Conflict as conflict:
            self.redirect_after_post(
                self.repo_url("pull"),
                outcome=None,
                path=normalize_path(path),
                dest=dest,
                pull_version=version,
                beside=conflict.details.get("beside"),
                message=conflict.message,
            )
            return
        self.redirect_after_post(
            self.repo_url("pull"),
            outcome={
                "path": outcome.path,
                "entry_path": outcome.entry.path,
                "version": outcome.version.number,
                "written": outcome.written,
            },
            lab_url=self.lab_url(outcome.path),
        )


class ActivityPageHandler(RepoPageHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        before = self.query_number("before")
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
        entry_id = whole_number(self.get_body_argument("id", ""), "id") or 0
        new_path = self.get_body_argument("path", "") or None
        async with self.engine.begin() as conn:
            entry = await store.restore(
                conn, entry_id, self.actor, normalize_path(new_path) if new_path else None
            )
        self.redirect(self.repo_url("entry", entry.path))


_PAGES = r"/hub/repo"

handlers: list[tuple] = [
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
