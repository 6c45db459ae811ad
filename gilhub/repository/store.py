"""The async queries over the repository's tables (:mod:`gilhub.repository.schema`).

Every function takes an ``AsyncConnection``; the caller owns the transaction
(``async with engine.begin() as conn``). :func:`push` must run inside one: it
locks the entry row (``SELECT ... FOR UPDATE``) so that of two truly
concurrent pushes from the same base exactly one wins and the other sees the
new head and gets a :class:`Conflict`. The ``(entry_id, number)`` primary key
is the second guard: a version number can never be written twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.db.binary import fetch_one_binary
from gilhub.repository.errors import BadRequest, Conflict, Forbidden, NotFound
from gilhub.repository.notebooks import PreparedContent
from gilhub.repository.paths import is_notebook
from gilhub.repository.schema import entries, events, push_bases, versions

MAX_MESSAGE_LENGTH = 10_000
MAX_TAGS = 32
_TAG = re.compile(r"^[\w][\w.+-]{0,63}$")
_LABEL = re.compile(r"^[\w][\w.+-]{0,63}$")


@dataclass(frozen=True)
class Actor:
    """Who asks: a gilhub user name and whether they are an admin."""

    name: str
    is_admin: bool = False


@dataclass
class Entry:
    id: int
    path: str
    kind: str
    author: str
    tags: list[str]
    head: int
    created: datetime
    updated: datetime
    deleted: datetime | None = None
    deleted_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "kind": self.kind,
            "author": self.author,
            "tags": list(self.tags),
            "head": self.head,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "deleted": self.deleted.isoformat() if self.deleted else None,
            "deleted_by": self.deleted_by,
        }


@dataclass
class Version:
    entry_id: int
    number: int
    author: str
    created: datetime
    message: str
    sha256: str
    size: int
    label: str | None
    content: bytes | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "author": self.author,
            "created": self.created.isoformat(),
            "message": self.message,
            "sha256": self.sha256,
            "size": self.size,
            "label": self.label,
        }


@dataclass
class PushResult:
    entry: Entry
    version: Version
    created: bool  # False when the content equalled the newest version


_ENTRY_COLUMNS = [
    entries.c.id,
    entries.c.path,
    entries.c.kind,
    entries.c.author,
    entries.c.tags,
    entries.c.head,
    entries.c.created,
    entries.c.updated,
    entries.c.deleted,
    entries.c.deleted_by,
]
_VERSION_COLUMNS = [
    versions.c.entry_id,
    versions.c.number,
    versions.c.author,
    versions.c.created,
    versions.c.message,
    versions.c.sha256,
    versions.c.size,
    versions.c.label,
]


def _entry(row: Any) -> Entry:
    return Entry(**{c.name: row._mapping[c.name] for c in _ENTRY_COLUMNS})


def _version(row: Any) -> Version:
    return Version(**dict(row._mapping))


def _live(path: str):
    return and_(entries.c.path == path, entries.c.deleted.is_(None))


def check_message(message: str) -> str:
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE_LENGTH:
        raise BadRequest(f"the message is longer than {MAX_MESSAGE_LENGTH} characters")
    return message.replace("\x00", "")


def check_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({tag.strip().lower() for tag in tags if tag and tag.strip()})
    if len(cleaned) > MAX_TAGS:
        raise BadRequest(f"an entry takes at most {MAX_TAGS} tags")
    bad = [tag for tag in cleaned if not _TAG.match(tag)]
    if bad:
        raise BadRequest(
            f"tags are words of letters, digits and . _ + - (at most 64): {bad[0]!r} is not"
        )
    return cleaned


def check_label(label: Any) -> str | None:
    if label is not None and not isinstance(label, str):
        raise BadRequest("a label is a string")
    if label is None or not label.strip():
        return None
    label = label.strip()
    if not _LABEL.match(label):
        raise BadRequest("a label is a word of letters, digits and . _ + - (at most 64)")
    return label


async def _record(
    conn: AsyncConnection,
    actor: str,
    action: str,
    entry: Entry,
    version: int | None = None,
    detail: str = "",
) -> None:
    await conn.execute(
        events.insert().values(
            actor=actor,
            action=action,
            entry_id=entry.id,
            path=entry.path,
            version=version,
            detail=detail,
        )
    )


async def get_entry(conn: AsyncConnection, path: str, *, lock: bool = False) -> Entry | None:
    """The live entry at ``path``; with ``lock`` its row stays locked until commit."""
    query = select(*_ENTRY_COLUMNS).where(_live(path))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _entry(row) if row else None


async def require_entry(conn: AsyncConnection, path: str, *, lock: bool = False) -> Entry:
    entry = await get_entry(conn, path, lock=lock)
    if entry is None:
        raise NotFound(f"the repository has no entry {path!r}", path=path)
    return entry


async def _create_entry(conn: AsyncConnection, path: str, kind: str, author: str) -> Entry | None:
    """Insert a new live entry, or return None if a concurrent push just did."""
    query = (
        insert(entries)
        .values(path=path, kind=kind, author=author)
        .on_conflict_do_nothing(index_elements=["path"], index_where=entries.c.deleted.is_(None))
        .returning(*_ENTRY_COLUMNS)
    )
    row = (await conn.execute(query)).first()
    return _entry(row) if row else None


async def versions_since(conn: AsyncConnection, entry_id: int, base: int) -> list[Version]:
    query = (
        select(*_VERSION_COLUMNS)
        .where(versions.c.entry_id == entry_id, versions.c.number > base)
        .order_by(versions.c.number)
    )
    return [_version(row) for row in await conn.execute(query)]


async def _head_sha256(conn: AsyncConnection, entry: Entry) -> str | None:
    query = select(versions.c.sha256).where(
        versions.c.entry_id == entry.id, versions.c.number == entry.head
    )
    return (await conn.execute(query)).scalar()


async def _conflict(conn: AsyncConnection, entry: Entry, base: int | None) -> Conflict:
    since = await versions_since(conn, entry.id, base or 0)
    who = ", ".join(sorted({v.author for v in since}))
    if base is None:
        message = (
            f"{entry.path!r} already exists in the repository ({entry.head} versions, by {who}); "
            "pull it and merge your changes, or push as a new path"
        )
    else:
        message = (
            f"{entry.path!r} has moved on since version {base}: "
            f"{len(since)} newer version(s) by {who}, now at version {entry.head}"
        )
    return Conflict(
        message,
        path=entry.path,
        base=base,
        head=entry.head,
        since=[v.as_json() for v in since],
    )


async def push(
    conn: AsyncConnection,
    *,
    path: str,
    prepared: PreparedContent,
    author: str,
    base: int | None,
    message: str = "",
    label: str | None = None,
) -> PushResult:
    """Add a version to the entry at ``path`` (created if new), if ``base`` is its head.

    ``base`` is the version the pusher started from (None: from nothing).
    Pushing the newest version's content again adds nothing and never
    conflicts: nothing can be lost.
    """
    message = check_message(message)
    label = check_label(label)
    if (prepared.kind == "notebook") != is_notebook(path):
        raise BadRequest(f"a notebook must be pushed to a .ipynb path and a file not: {path!r}")
    entry = await get_entry(conn, path, lock=True)
    if entry is None:
        if base:
            raise Conflict(
                f"{path!r} is no longer in the repository (renamed or deleted since version "
                f"{base}); push as a new path",
                path=path,
                base=base,
                head=0,
                since=[],
            )
        entry = await _create_entry(conn, path, prepared.kind, author)
        if entry is None:  # someone created it between our SELECT and INSERT
            entry = await require_entry(conn, path, lock=True)
    if entry.kind != prepared.kind:
        raise BadRequest(f"{path!r} holds a {entry.kind}, not a {prepared.kind}")
    if entry.head and await _head_sha256(conn, entry) == prepared.sha256:
        head = await get_version(conn, entry, entry.head, with_content=False)
        return PushResult(entry, head, created=False)
    if base and base > entry.head:
        raise BadRequest(f"{path!r} has no version {base} to start from (newest: {entry.head})")
    if entry.head != (base or 0):
        raise await _conflict(conn, entry, base)
    return await _add_version(conn, entry, prepared, author, message, label)


async def _add_version(
    conn: AsyncConnection,
    entry: Entry,
    prepared: PreparedContent,
    author: str,
    message: str,
    label: str | None,
) -> PushResult:
    number = entry.head + 1
    try:
        row = (
            await conn.execute(
                versions.insert()
                .values(
                    entry_id=entry.id,
                    number=number,
                    author=author,
                    message=message,
                    content=prepared.content,
                    sha256=prepared.sha256,
                    size=prepared.size,
                    label=label,
                )
                .returning(*_VERSION_COLUMNS)
            )
        ).first()
    except IntegrityError:
        raise Conflict(
            f"version {number} of {entry.path!r} was just pushed by someone else"
        ) from None
    contributors = entries.c.contributors
    row_entry = (
        await conn.execute(
            update(entries)
            .where(entries.c.id == entry.id)
            .values(
                head=number,
                updated=func.now(),
                body=prepared.text,
                messages=func.concat_ws(literal("\n"), entries.c.messages, message),
                contributors=func.concat_ws(literal(" "), contributors, author),
            )
            .returning(*_ENTRY_COLUMNS)
        )
    ).first()
    entry = _entry(row_entry)
    await _record(conn, author, "push", entry, number, message)
    return PushResult(entry, _version(row), created=True)


async def get_version(
    conn: AsyncConnection, entry: Entry, number: int | None = None, *, with_content: bool = True
) -> Version:
    """Version ``number`` of ``entry`` (the newest when None)."""
    number = entry.head if number is None else number
    query = select(*_VERSION_COLUMNS).where(
        versions.c.entry_id == entry.id, versions.c.number == number
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(
            f"{entry.path!r} has no version {number} (versions 1 to {entry.head})",
            path=entry.path,
            head=entry.head,
        )
    version = _version(row)
    if with_content:
        version.content = await _read_content(conn, entry.id, number)
    return version


async def _read_content(conn: AsyncConnection, entry_id: int, number: int) -> bytes:
    row = await fetch_one_binary(
        conn,
        "SELECT content FROM repository.versions WHERE entry_id = %s AND number = %s",
        (entry_id, number),
    )
    assert row is not None
    return bytes(row.content)


async def history(
    conn: AsyncConnection, entry: Entry, *, limit: int = 100, before: int | None = None
) -> list[Version]:
    """Versions of ``entry``, newest first; ``before`` pages back in history."""
    query = select(*_VERSION_COLUMNS).where(versions.c.entry_id == entry.id)
    if before is not None:
        query = query.where(versions.c.number < before)
    query = query.order_by(versions.c.number.desc()).limit(limit)
    return [_version(row) for row in await conn.execute(query)]


async def inferred_base(
    conn: AsyncConnection, author: str, source: str, path: str, origin_version: int
) -> int | None:
    """The version a push of ``source`` to ``path`` starts from, when the pusher did not say.

    That is the version this author last pushed from this same copy while it
    carried the same origin, else the origin itself (0 or None: from nothing).
    """
    query = (
        select(push_bases.c.pushed_version)
        .join(entries, entries.c.id == push_bases.c.entry_id)
        .where(
            _live(path),
            push_bases.c.author == author,
            push_bases.c.source == source,
            push_bases.c.origin_version == origin_version,
        )
    )
    pushed = (await conn.execute(query)).scalar()
    if pushed is not None:
        return pushed
    return origin_version or None


async def remember_push(
    conn: AsyncConnection,
    author: str,
    source: str,
    entry_id: int,
    origin_version: int,
    pushed_version: int,
) -> None:
    values = {"origin_version": origin_version, "pushed_version": pushed_version}
    statement = insert(push_bases).values(author=author, source=source, entry_id=entry_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=list(push_bases.primary_key), set_=values)
    )


@dataclass
class Folder:
    """One level of the repository tree."""

    prefix: str
    folders: list[tuple[str, int]]  # (name, number of entries below)
    entries: list[Entry]


async def browse(conn: AsyncConnection, prefix: str) -> Folder:
    """The folders and entries directly under ``prefix`` (``""`` or ``"a/b/"``)."""
    rest = func.substr(entries.c.path, len(prefix) + 1)
    under = and_(
        entries.c.deleted.is_(None),
        entries.c.path.startswith(prefix, autoescape=True) if prefix else literal(True),
    )
    folder_name = func.split_part(rest, "/", 1)
    folder_rows = await conn.execute(
        select(folder_name.label("name"), func.count().label("count"))
        .where(under, func.strpos(rest, "/") > 0)
        .group_by(folder_name)
        .order_by(folder_name)
    )
    entry_rows = await conn.execute(
        select(*_ENTRY_COLUMNS).where(under, func.strpos(rest, "/") == 0).order_by(entries.c.path)
    )
    return Folder(
        prefix,
        [(row.name, row.count) for row in folder_rows],
        [_entry(row) for row in entry_rows],
    )


async def entries_under(
    conn: AsyncConnection, prefix: str, *, kind: str | None = None, limit: int = 1000
) -> list[Entry]:
    """Live entries anywhere below ``prefix`` (``"a/b/"``), by path; of ``kind`` if given."""
    query = select(*_ENTRY_COLUMNS).where(
        entries.c.deleted.is_(None), entries.c.path.startswith(prefix, autoescape=True)
    )
    if kind is not None:
        query = query.where(entries.c.kind == kind)
    query = query.order_by(entries.c.path).limit(limit)
    return [_entry(row) for row in await conn.execute(query)]


#: ts_headline's marks around matched words: control characters, which a search text cannot
#: hold, so that the snippet can be escaped first and marked up after.
MATCH_START, MATCH_END = "\x02", "\x03"
#: Only the start of a long text is scanned for a snippet: ts_headline parses all it is given,
#: for each hit on the page (PostgreSQL computes it after the LIMIT). Over 20,000 characters
#: that took longer than the search itself (bench/repo_bench.py); words found only further
#: on still make an entry a hit, shown with the start of its text.
SNIPPET_SOURCE_CHARS = 5_000
_SNIPPET_OPTIONS = (
    f"StartSel={MATCH_START}, StopSel={MATCH_END}, MaxFragments=2, MaxWords=18, MinWords=6,"
    " FragmentDelimiter=' … '"
)


@dataclass
class SearchHit:
    entry: Entry
    rank: float
    #: where the words were found, matches between MATCH_START and MATCH_END
    snippet: str = ""

    @property
    def snippet_text(self) -> str:
        return self.snippet.replace(MATCH_START, "").replace(MATCH_END, "")


async def search(
    conn: AsyncConnection, text: str, *, limit: int = 50, offset: int = 0
) -> list[SearchHit]:
    """Live entries matching ``text`` (web-search syntax: words, "phrases", -not, or)."""
    text = (text or "").strip()
    if not text:
        return []
    if len(text) > 1000:
        raise BadRequest("the search is longer than 1000 characters")
    query_vector = func.websearch_to_tsquery(literal_column("'english'::regconfig"), text)
    rank = func.ts_rank_cd(entries.c.search, query_vector).label("rank")
    searched_text = func.left(
        func.concat_ws(" ", entries.c.messages, entries.c.body), SNIPPET_SOURCE_CHARS
    )
    snippet = func.ts_headline(
        literal_column("'english'::regconfig"), searched_text, query_vector, _SNIPPET_OPTIONS
    ).label("snippet")
    query = (
        select(*_ENTRY_COLUMNS, rank, snippet)
        .where(entries.c.deleted.is_(None), entries.c.search.op("@@")(query_vector))
        .order_by(rank.desc(), entries.c.updated.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        SearchHit(_entry(row), float(row.rank), row.snippet) for row in await conn.execute(query)
    ]


async def set_tags(conn: AsyncConnection, path: str, tags: list[str], actor: Actor) -> Entry:
    tags = check_tags(tags)
    entry = await require_entry(conn, path, lock=True)
    row = (
        await conn.execute(
            update(entries)
            .where(entries.c.id == entry.id)
            .values(tags=tags)
            .returning(*_ENTRY_COLUMNS)
        )
    ).first()
    entry = _entry(row)
    await _record(conn, actor.name, "tag", entry, detail=" ".join(tags))
    return entry


async def set_label(
    conn: AsyncConnection, path: str, number: int, label: str | None, actor: Actor
) -> Version:
    label = check_label(label)
    entry = await require_entry(conn, path, lock=True)
    await get_version(conn, entry, number, with_content=False)
    row = (
        await conn.execute(
            update(versions)
            .where(versions.c.entry_id == entry.id, versions.c.number == number)
            .values(label=label)
            .returning(*_VERSION_COLUMNS)
        )
    ).first()
    await _record(conn, actor.name, "label", entry, number, label or "")
    return _version(row)


def _check_may_change(entry: Entry, actor: Actor, what: str) -> None:
    if not (actor.is_admin or actor.name == entry.author):
        raise Forbidden(
            f"only {entry.author} (who created {entry.path!r}) or an admin may {what} it"
        )


async def _move(conn: AsyncConnection, entry: Entry, new_path: str) -> Entry:
    if is_notebook(new_path) != (entry.kind == "notebook"):
        raise BadRequest(f"a {entry.kind} cannot move to {new_path!r} (check the .ipynb suffix)")
    try:
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    update(entries)
                    .where(entries.c.id == entry.id)
                    .values(path=new_path, deleted=None, deleted_by=None, updated=func.now())
                    .returning(*_ENTRY_COLUMNS)
                )
            ).first()
    except IntegrityError:
        raise Conflict(f"{new_path!r} is already taken by another entry", path=new_path) from None
    return _entry(row)


async def rename(conn: AsyncConnection, path: str, new_path: str, actor: Actor) -> Entry:
    entry = await require_entry(conn, path, lock=True)
    _check_may_change(entry, actor, "rename")
    if new_path == path:
        return entry
    moved = await _move(conn, entry, new_path)
    await _record(conn, actor.name, "rename", moved, detail=f"from {path}")
    return moved


async def delete(conn: AsyncConnection, path: str, actor: Actor) -> Entry:
    """Hide the entry; its versions stay, and an admin can restore it."""
    entry = await require_entry(conn, path, lock=True)
    _check_may_change(entry, actor, "delete")
    row = (
        await conn.execute(
            update(entries)
            .where(entries.c.id == entry.id)
            .values(deleted=func.now(), deleted_by=actor.name)
            .returning(*_ENTRY_COLUMNS)
        )
    ).first()
    entry = _entry(row)
    await _record(conn, actor.name, "delete", entry, entry.head)
    return entry


async def restore(
    conn: AsyncConnection, entry_id: int, actor: Actor, new_path: str | None = None
) -> Entry:
    """Bring back a deleted entry (at ``new_path`` if its old path was taken since)."""
    if not actor.is_admin:
        raise Forbidden("only an admin may restore a deleted entry")
    row = (
        await conn.execute(
            select(*_ENTRY_COLUMNS).where(entries.c.id == entry_id).with_for_update()
        )
    ).first()
    if row is None or row.deleted is None:
        raise NotFound(f"there is no deleted entry number {entry_id}")
    entry = await _move(conn, _entry(row), new_path or row.path)
    await _record(conn, actor.name, "restore", entry, entry.head)
    return entry


async def deleted_entries(conn: AsyncConnection, *, limit: int = 200) -> list[Entry]:
    query = (
        select(*_ENTRY_COLUMNS)
        .where(entries.c.deleted.is_not(None))
        .order_by(entries.c.deleted.desc())
        .limit(limit)
    )
    return [_entry(row) for row in await conn.execute(query)]


@dataclass
class Event:
    id: int
    time: datetime
    actor: str
    action: str
    entry_id: int | None
    path: str
    version: int | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["time"] = self.time.isoformat()
        return data


async def activity(
    conn: AsyncConnection, *, limit: int = 50, before: int | None = None, actor: str | None = None
) -> list[Event]:
    """The feed of who did what, newest first; ``before`` is an event id for paging."""
    query = select(events)
    if before is not None:
        query = query.where(events.c.id < before)
    if actor:
        query = query.where(events.c.actor == actor)
    query = query.order_by(events.c.id.desc()).limit(limit)
    return [Event(**dict(row._mapping)) for row in await conn.execute(query)]
