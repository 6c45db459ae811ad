"""What the repository's pages (:mod:`.pages`) and REST API (:mod:`.api`) share.

This is the edge where the repository's own errors (:mod:`.errors`) become
HTTP statuses: the store and the service know nothing of HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.handlers.base import whole_number
from gilhub.repository import render, store
from gilhub.repository.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RepositoryError,
    TooLarge,
)
from gilhub.repository.paths import normalize_path
from gilhub.web_errors import domain_errors

if TYPE_CHECKING:
    from gilhub.repository.service import RepositoryService

#: The repository's errors as HTTP errors carrying their details (JSON for the API), of
#: these statuses (400 for the others).
repository_errors = domain_errors(
    RepositoryError, {BadRequest: 400, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413}
)


def flag(value: Any) -> bool:
    """A checkbox or query flag: ``1``, ``true``, ``yes`` or ``on``."""
    return str(value).lower() in ("1", "true", "yes", "on")


class RepositoryMixin:
    """What the repository's pages and API handlers share: the service, who asks, what they ask."""

    hub: Any
    current_user: Any
    get_query_argument: Any

    @property
    def repository(self) -> RepositoryService:
        return self.hub.repository

    @property
    def engine(self) -> AsyncEngine:
        return self.hub.db

    @property
    def actor(self) -> store.Actor:
        return store.Actor(self.current_user.name, self.current_user.is_admin)

    def query_number(self, name: str) -> int | None:
        return whole_number(self.get_query_argument(name, None), name)

    async def entry(self, path: str) -> store.Entry:
        async with self.engine.connect() as conn:
            return await store.require_entry(conn, normalize_path(path))

    async def version_content(self, entry: store.Entry, number: int | None) -> store.Version:
        async with self.engine.connect() as conn:
            return await store.get_version(conn, entry, number)

    async def requested_version(self, path: str) -> tuple[store.Entry, store.Version]:
        """The entry at ``path`` and the version asked for by ``?version=`` (default: newest)."""
        entry = await self.entry(path)
        return entry, await self.version_content(entry, self.query_number("version"))

    async def requested_history(
        self, path: str, limit: int
    ) -> tuple[store.Entry, list[store.Version]]:
        """The entry at ``path`` and ``limit`` versions, older than ``?before=`` if given."""
        entry = await self.entry(path)
        before = self.query_number("before")
        async with self.engine.connect() as conn:
            return entry, await store.history(conn, entry, limit=limit, before=before)

    async def requested_diff(self, path: str) -> RequestedDiff:
        """The diff asked for by ``?from=&to=&outputs=`` (default: the newest change)."""
        entry = await self.entry(path)
        new = self.query_number("to") or entry.head
        old = self.query_number("from") or max(new - 1, 1)
        outputs = flag(self.get_query_argument("outputs", "0"))
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
