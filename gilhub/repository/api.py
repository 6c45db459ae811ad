"""The repository's REST API under ``/hub/api/repo/…`` (the pages are in :mod:`.pages`).

API calls authenticate with a token or with the login cookie plus XSRF (as
every hub handler does); errors come back as JSON with the details a client
needs to act (who pushed what since, whether it merges, where to write beside).
"""

from __future__ import annotations

from gilhub.apihandlers.base import APIHandler
from gilhub.handlers.base import admin_required, login_required, whole_number
from gilhub.repository import store
from gilhub.repository.errors import BadRequest
from gilhub.repository.paths import normalize_path, normalize_prefix
from gilhub.repository.web import RepositoryMixin, repository_errors

MAX_PAGE = 1000


class RepoAPIHandler(RepositoryMixin, APIHandler):
    token_scopes = ("read:repo", "repo")

    def limit(self, default: int = 50) -> int:
        return max(1, min(self.int_argument("limit", default) or default, MAX_PAGE))


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
        body = self.json_object()
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
        body = self.json_object()
        keep = body.get("keep_outputs")
        outcome = await self.repository.push_from_storage(
            self.current_user,
            source=str(body.get("source") or ""),
            target=body.get("path") or None,
            message=str(body.get("message") or ""),
            base=whole_number(body.get("base"), "base"),
            keep_outputs=None if keep is None else bool(keep),
            label=body.get("label") or None,
        )
        self.write_json(outcome.as_json(), status=201 if outcome.result.created else 200)


class MergeAPIHandler(RepoAPIHandler):
    """Push the clean nbdime merge of my copy (from ``base``) with the newest version."""

    @login_required
    @repository_errors
    async def post(self) -> None:
        body = self.json_object()
        base = whole_number(body.get("base"), "base")
        if not base:
            raise BadRequest("a merge needs the base version your copy started from")
        outcome = await self.repository.push_merge(
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
        body = self.json_object()
        outcome = await self.repository.pull_to_storage(
            self.current_user,
            path=str(body.get("path") or ""),
            version=whole_number(body.get("version"), "version"),
            dest=body.get("dest") or None,
            on_exists=str(body.get("on_exists") or "fail"),
        )
        self.write_json(outcome.as_json(), status=201 if outcome.written else 200)


class SearchAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        text = self.get_query_argument("q", "")
        offset = self.query_number("offset") or 0
        async with self.engine.connect() as conn:
            hits = await store.search(conn, text, limit=self.limit(), offset=offset)
        results = [
            {**hit.entry.as_json(), "rank": hit.rank, "snippet": hit.snippet_text} for hit in hits
        ]
        self.write_json({"query": text, "results": results})


class ActivityAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def get(self) -> None:
        before = self.query_number("before")
        actor = self.get_query_argument("user", None)
        async with self.engine.connect() as conn:
            feed = await store.activity(conn, limit=self.limit(), before=before, actor=actor)
        self.write_json({"events": [event.as_json() for event in feed]})


class LabelAPIHandler(RepoAPIHandler):
    @login_required
    @repository_errors
    async def put(self, path: str) -> None:
        body = self.json_object()
        number = whole_number(body.get("version"), "version")
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
        body = self.json_object()
        entry_id = whole_number(body.get("id"), "id")
        if entry_id is None:
            raise BadRequest("give the id of the deleted entry")
        new_path = normalize_path(body["path"]) if body.get("path") else None
        async with self.engine.begin() as conn:
            entry = await store.restore(conn, entry_id, self.actor, new_path)
        self.write_json(entry.as_json())


_API = r"/hub/api/repo"

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
]
