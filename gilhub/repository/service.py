"""Moving files between a user's storage and the repository (:class:`RepositoryService`).

The hub acts for the user as the database superuser, reading and writing the
user's rows in the ``contents`` schema under their owner role
(:mod:`gilhub.contents.query`). Parsing and stripping big notebooks runs in a
thread, outside any transaction, so no row lock is held while the CPU works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

from gilhub.contents import query as contents
from gilhub.contents.errors import StorageError
from gilhub.repository import notebooks, render, store
from gilhub.repository.errors import BadRequest, Conflict, NotFound
from gilhub.repository.paths import beside_name, is_notebook, normalize_path, numbered_path
from gilhub.users import User

if TYPE_CHECKING:
    from gilhub.app import GilHub

MAX_BESIDE_ATTEMPTS = 100


class RepositoryConfig(LoggingConfigurable):
    """Settings of the shared repository (``c.RepositoryConfig.…`` in gilhub_config.py)."""

    max_size = Integer(
        50 * 1024 * 1024,
        config=True,
        help="The largest file (in bytes) the repository accepts; larger pushes get HTTP 413.",
    )
    strip_outputs = Bool(
        True,
        config=True,
        help="Strip outputs from notebooks on push unless the push asks to keep them.",
    )
    mathjax_url = Unicode(
        "",
        config=True,
        help="MathJax 2 for rendered notebooks, with its ?config= (default: the copy the hub "
        "serves from jupyter-server-mathjax, so views work offline).",
    )


@dataclass
class PushOutcome:
    result: store.PushResult
    merged: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "entry": self.result.entry.as_json(),
            "version": self.result.version.as_json(),
            "created": self.result.created,
            "merged": self.merged,
        }


@dataclass
class PullOutcome:
    path: str  # where the file was written in the user's storage
    entry: store.Entry
    version: store.Version
    written: bool  # False when the user's file already had exactly this content

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "entry": self.entry.as_json(),
            "version": self.version.as_json(),
            "written": self.written,
        }


def _owner(user: User) -> str:
    if not user.db_role:
        raise BadRequest(f"{user.name} has no notebook storage")
    return user.db_role


async def _version_content(conn: AsyncConnection, path: str, number: int | None) -> bytes:
    entry = await store.require_entry(conn, path)
    version = await store.get_version(conn, entry, number)
    assert version.content is not None
    return version.content


async def _write_user_file(conn: AsyncConnection, owner: str, path: str, content: bytes) -> None:
    """Write to the user's storage; what the storage refuses (a file in the way) is a 400."""
    try:
        await contents.write_file(conn, owner, path, content)
    except StorageError as error:
        raise BadRequest(str(error), dest=path) from None


async def _first_free(
    path: str, taken: Callable[[str], Awaitable[bool]], name: Callable[[str, int], str]
) -> str:
    """The first of ``name(path, 2)``, ``name(path, 3)``, … that is not ``taken``."""
    for attempt in range(2, MAX_BESIDE_ATTEMPTS + 2):
        candidate = name(path, attempt)
        if not await taken(candidate):
            return candidate
    raise Conflict(f"too many copies of {path!r} already; choose another path", dest=path)


async def _free_path(conn: AsyncConnection, owner: str, path: str) -> str:
    """A name beside ``path`` in the user's storage: ``x (2).ipynb``, …"""

    async def taken(candidate: str) -> bool:
        return await contents.kind_of(conn, owner, candidate) is not None

    return await _first_free(path, taken, beside_name)


@dataclass(frozen=True)
class RepositoryService:
    """The repository as the hub's pages and API use it: built once at start (``hub.repository``).

    Holds what every operation needs (the superuser engine, the configuration) so
    that handlers pass only who asks and what they ask for.
    """

    engine: AsyncEngine
    config: RepositoryConfig

    async def read_user_file(self, user: User, path: str) -> bytes:
        """The content of ``path`` in ``user``'s storage (404, or 413 before reading it)."""
        owner = _owner(user)
        async with self.engine.connect() as conn:
            meta = await contents.read_file(conn, owner, path, with_content=False)
            if meta is not None:
                notebooks.check_size(meta.size, self.config.max_size)
                meta = await contents.read_file(conn, owner, path)
        if meta is None or meta.content is None:  # missing, or deleted between the two reads
            raise NotFound(f"you have no file {path!r}", path=path)
        return meta.content

    async def explain_conflict(self, conflict: Conflict, mine: bytes) -> None:
        """Add to a push conflict whether nbdime merges the two sides cleanly."""
        base, head, path = (conflict.details.get(k) for k in ("base", "head", "path"))
        conflict.details["mergeable"] = False
        if not base or not head or not is_notebook(path):
            return
        async with self.engine.connect() as conn:
            base_content = await _version_content(conn, path, base)
            head_content = await _version_content(conn, path, head)
        merged = await asyncio.to_thread(render.merge, base_content, mine, head_content)
        conflict.details["mergeable"] = merged.content is not None

    async def push_from_storage(
        self,
        user: User,
        *,
        source: str,
        target: str | None = None,
        message: str = "",
        base: int | None = None,
        keep_outputs: bool | None = None,
        label: str | None = None,
    ) -> PushOutcome:
        """Push ``source`` from ``user``'s storage to ``target`` in the repository.

        Without an explicit ``base``, it is the version this user last pushed
        from this copy, or else the origin recorded in the notebook when it was
        pulled (if it came from this same repository path).
        """
        source = normalize_path(source, what="source path")
        target = normalize_path(target or source, what="repository path")
        label = store.check_label(label)
        if is_notebook(source) != is_notebook(target):
            raise BadRequest("a notebook goes to a .ipynb path, and only a notebook does")
        original = await self.read_user_file(user, source)
        strip = self.config.strip_outputs if keep_outputs is None else not keep_outputs
        prepared = await asyncio.to_thread(
            notebooks.prepare_push, target, original, strip=strip, max_size=self.config.max_size
        )
        origin = prepared.origin[1] if prepared.origin and prepared.origin[0] == target else 0
        try:
            async with self.engine.begin() as conn:
                if base is None:
                    base = await store.inferred_base(conn, user.name, source, target, origin)
                result = await store.push(
                    conn,
                    path=target,
                    prepared=prepared,
                    author=user.name,
                    base=base,
                    message=message,
                    label=label,
                )
                await store.remember_push(
                    conn, user.name, source, result.entry.id, origin, result.version.number
                )
        except Conflict as conflict:
            conflict.details.update(source=source)
            await self.explain_conflict(conflict, prepared.content)
            raise
        return PushOutcome(result)

    async def merge_preview(
        self,
        user: User,
        *,
        source: str,
        target: str,
        base: int,
    ) -> tuple[bytes, bytes, bytes, render.MergeResult, store.Entry]:
        """Base, mine, theirs (the newest version) and nbdime's merge of them."""
        source = normalize_path(source, what="source path")
        target = normalize_path(target, what="repository path")
        if not is_notebook(target):
            raise BadRequest("only notebooks are merged")
        original = await self.read_user_file(user, source)
        prepared = await asyncio.to_thread(
            notebooks.prepare_push, target, original, strip=True, max_size=self.config.max_size
        )
        async with self.engine.connect() as conn:
            entry = await store.require_entry(conn, target)
            base_content = await _version_content(conn, target, base)
            theirs = await _version_content(conn, target, entry.head)
        merged = await asyncio.to_thread(render.merge, base_content, prepared.content, theirs)
        return base_content, prepared.content, theirs, merged, entry

    async def free_path(self, path: str) -> str:
        """A repository path next to ``path`` that no live entry has (``x-2.ipynb``, …):
        what "push as a new path" proposes after a conflict."""
        path = normalize_path(path)

        async def taken(candidate: str) -> bool:
            return await store.get_entry(conn, candidate) is not None

        async with self.engine.connect() as conn:
            return await _first_free(path, taken, numbered_path)

    async def push_merge(
        self,
        user: User,
        *,
        source: str,
        target: str,
        base: int,
        message: str = "",
    ) -> PushOutcome:
        """Push the clean merge of my copy (started from ``base``) with the newest version.

        The merged notebook also replaces my copy, with its origin set to the new
        version, so that my next push starts from the merge.
        """
        *_, merged, entry = await self.merge_preview(user, source=source, target=target, base=base)
        if merged.content is None:
            raise Conflict(
                f"your changes and the newer versions of {target!r} overlap in {merged.conflicts} "
                "place(s); merge by hand (pull the newest version) or push as a new path",
                path=target,
                head=entry.head,
                mergeable=False,
            )
        prepared = await asyncio.to_thread(
            notebooks.prepare_push,
            target,
            merged.content,
            strip=False,
            max_size=self.config.max_size,
        )
        message = message or f"merge of {user.name}'s changes from version {base}"
        async with self.engine.begin() as conn:
            result = await store.push(
                conn,
                path=target,
                prepared=prepared,
                author=user.name,
                base=entry.head,
                message=message,
            )
            mine = await asyncio.to_thread(
                notebooks.with_origin, merged.content, target, result.version.number
            )
            await _write_user_file(conn, _owner(user), normalize_path(source), mine)
        return PushOutcome(result, merged=True)

    async def pull_to_storage(
        self,
        user: User,
        *,
        path: str,
        version: int | None = None,
        dest: str | None = None,
        on_exists: str = "fail",
    ) -> PullOutcome:
        """Copy a version (the newest by default) into ``user``'s storage.

        ``on_exists`` decides what happens when ``dest`` is already a file of the
        user's with other content: ``"fail"`` (409, nothing written),
        ``"beside"`` (write ``name (2).ipynb``) or ``"overwrite"`` (the user said so).
        """
        if on_exists not in ("fail", "beside", "overwrite"):
            raise BadRequest("on_exists is one of fail, beside, overwrite")
        path = normalize_path(path, what="repository path")
        dest = normalize_path(dest or path, what="destination path")
        if is_notebook(path) != is_notebook(dest):
            raise BadRequest("a notebook is pulled to a .ipynb path, and only a notebook is")
        owner = _owner(user)
        async with self.engine.connect() as conn:
            entry = await store.require_entry(conn, path)
            chosen = await store.get_version(conn, entry, version)
        assert chosen.content is not None
        content = chosen.content
        if entry.kind == "notebook":
            content = await asyncio.to_thread(notebooks.with_origin, content, path, chosen.number)
        async with self.engine.begin() as conn:
            existing = await contents.read_file(conn, owner, dest, with_content=False)
            if existing is not None and existing.sha256 == notebooks.sha256_hex(content):
                return PullOutcome(dest, entry, chosen, written=False)
            if existing is not None or await contents.kind_of(conn, owner, dest) is not None:
                if on_exists == "fail":
                    raise Conflict(
                        f"you already have {dest!r}; overwrite it, or write beside it",
                        dest=dest,
                        beside=await _free_path(conn, owner, dest),
                    )
                if on_exists == "beside":
                    dest = await _free_path(conn, owner, dest)
            await _write_user_file(conn, owner, dest, content)
        chosen.content = None
        return PullOutcome(dest, entry, chosen, written=True)


async def start(hub: GilHub) -> RepositoryService:
    """The hub's repository service, built once its database is open (the part's start hook)."""
    assert hub.db is not None
    return RepositoryService(hub.db, RepositoryConfig(parent=hub))
