"""Plain async queries over the ``contents`` schema.

Every function takes an open ``AsyncConnection`` (the caller owns the
transaction) and the ``owner`` role whose rows it touches. A user server
passes its own role (row-level security would hide other rows anyway); the
hub, connected as the superuser, passes the role of the user it acts for.

Content travels as ``bytea`` both ways (no base64 in SQL). A whole subtree
is renamed, copied or deleted with one statement: under the "C" collation a
directory's descendants are the index range ``[dir/, dir0)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from gilhub.contents import paths
from gilhub.contents.errors import WrongKind
from gilhub.contents.schema import checkpoints, directories, files, upload_chunks
from gilhub.db.binary import fetch_one_binary


@dataclass(frozen=True)
class FileRecord:
    path: str
    content: bytes | None
    size: int
    sha256: str
    created: datetime
    last_modified: datetime


@dataclass(frozen=True)
class DirectoryRecord:
    path: str
    created: datetime
    last_modified: datetime


@dataclass(frozen=True)
class Entry:
    """A directory listing row: no content is ever fetched for a listing."""

    kind: str  # "directory" or "file"
    path: str
    size: int | None
    created: datetime
    last_modified: datetime


@dataclass(frozen=True)
class CheckpointRecord:
    id: int
    created: datetime


def _subtree(column, path: str) -> ColumnElement[bool]:
    """``column`` is ``path`` or lies below it (an index range scan)."""
    return or_(column == path, and_(column >= path + "/", column < path + "0"))


def _moved(column, old: str, new: str):
    return literal(new) + func.substr(column, len(old) + 1)


def _file_record(row, with_content: bool) -> FileRecord:
    return FileRecord(
        path=row.path,
        content=bytes(row.content) if with_content else None,
        size=row.size,
        sha256=bytes(row.sha256).hex(),
        created=row.created,
        last_modified=row.last_modified,
    )


_FILE_META = (files.c.path, files.c.size, files.c.sha256, files.c.created, files.c.last_modified)


# -- reading -----------------------------------------------------------------


async def read_file(
    conn: AsyncConnection, owner: str, path: str, *, with_content: bool = True
) -> FileRecord | None:
    if with_content:
        row = await fetch_one_binary(conn, _READ_FILE_WITH_CONTENT, (owner, path))
    else:
        statement = select(*_FILE_META).where(files.c.owner == owner, files.c.path == path)
        row = (await conn.execute(statement)).first()
    return _file_record(row, with_content) if row else None


async def list_files(conn: AsyncConnection, owner: str, limit: int) -> list[FileRecord]:
    """``owner``'s first ``limit`` files by path, at every depth (metadata, no content)."""
    statement = (
        select(*_FILE_META).where(files.c.owner == owner).order_by(files.c.path).limit(limit)
    )
    return [_file_record(row, False) for row in await conn.execute(statement)]


_READ_FILE_WITH_CONTENT = (
    "SELECT path, size, sha256, created, last_modified, content FROM contents.files"
    " WHERE owner = %s AND path = %s"
)


async def read_directory(conn: AsyncConnection, owner: str, path: str) -> DirectoryRecord | None:
    row = (
        await conn.execute(
            select(directories.c.path, directories.c.created, directories.c.last_modified).where(
                directories.c.owner == owner, directories.c.path == path
            )
        )
    ).first()
    if row is None and path == "":
        # A user's root exists before anything was ever written to it.
        now = (await conn.execute(select(func.now()))).scalar_one()
        return DirectoryRecord(path="", created=now, last_modified=now)
    return DirectoryRecord(row.path, row.created, row.last_modified) if row else None


async def kind_of(conn: AsyncConnection, owner: str, path: str) -> str | None:
    """``"directory"``, ``"file"`` or ``None``, in one query."""
    if path == "":
        return "directory"
    found = await conn.execute(
        text(
            "SELECT 'directory' FROM contents.directories WHERE owner = :owner AND path = :path"
            " UNION ALL"
            " SELECT 'file' FROM contents.files WHERE owner = :owner AND path = :path"
        ),
        {"owner": owner, "path": path},
    )
    return found.scalar()


async def list_directory(conn: AsyncConnection, owner: str, path: str) -> list[Entry]:
    """The children of ``path`` (one query, no content)."""
    rows = await conn.execute(
        text(
            "SELECT 'directory' AS kind, path, NULL::bigint AS size, created, last_modified"
            " FROM contents.directories"
            " WHERE owner = :owner AND parent = :path AND path <> ''"
            " UNION ALL"
            " SELECT 'file', path, size, created, last_modified FROM contents.files"
            " WHERE owner = :owner AND parent = :path"
        ),
        {"owner": owner, "path": path},
    )
    return [Entry(r.kind, r.path, r.size, r.created, r.last_modified) for r in rows]


# -- writing -----------------------------------------------------------------


async def make_directories(conn: AsyncConnection, owner: str, path: str) -> None:
    """Create ``path`` and every missing directory above it."""
    wanted = [*paths.ancestors(path), path] if path else [""]
    await conn.execute(
        insert(directories).on_conflict_do_nothing(),
        [{"owner": owner, "path": p} for p in wanted],
    )
    await _refuse_file_in_the_way(conn, owner, wanted)


async def _refuse_file_in_the_way(conn: AsyncConnection, owner: str, dirs: list[str]) -> None:
    clash = (
        await conn.execute(
            select(files.c.path).where(files.c.owner == owner, files.c.path.in_(dirs)).limit(1)
        )
    ).scalar()
    if clash is not None:
        raise WrongKind(f"{clash!r} is a file, not a directory")


async def write_file(conn: AsyncConnection, owner: str, path: str, content: bytes) -> FileRecord:
    """Create or replace the file at ``path``, creating its parent directories."""
    await make_directories(conn, owner, paths.split(path)[0])
    return await store_file(conn, owner, path, content)


async def create_file(
    conn: AsyncConnection, owner: str, path: str, content: bytes
) -> FileRecord | None:
    """Create the file at ``path`` (and its parent directories) unless something is there.

    ``None`` when a file or directory already is: never overwrites, even when two
    requests create the same path at once (the primary key decides, not a prior check).
    """
    await make_directories(conn, owner, paths.split(path)[0])
    if await kind_of(conn, owner, path) is not None:
        return None
    return await _insert_file(conn, owner, path, content, replace=False)


async def store_file(conn: AsyncConnection, owner: str, path: str, content: bytes) -> FileRecord:
    """Create or replace the file at ``path`` (its parent directory must exist)."""
    record = await _insert_file(conn, owner, path, content, replace=True)
    assert record is not None  # replacing always writes
    return record


async def _insert_file(
    conn: AsyncConnection, owner: str, path: str, content: bytes, *, replace: bool
) -> FileRecord | None:
    """Write the file at ``path``; an existing one is replaced, or left alone (``None``)."""
    if await kind_of(conn, owner, path) == "directory":
        raise WrongKind(f"{path!r} is a directory, not a file")
    values = {
        "owner": owner,
        "path": path,
        "content": content,
        "size": len(content),
        "sha256": hashlib.sha256(content).digest(),
    }
    statement = insert(files).values(values)
    key = [files.c.owner, files.c.path]
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={
                "content": statement.excluded.content,
                "size": statement.excluded.size,
                "sha256": statement.excluded.sha256,
                "last_modified": func.now(),
            },
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key)
    row = (await conn.execute(statement.returning(*_FILE_META))).first()
    if row is None:
        return None
    await touch_directory(conn, owner, paths.split(path)[0])
    return _file_record(row, with_content=False)


async def set_file_times(
    conn: AsyncConnection, owner: str, path: str, *, created: datetime, modified: datetime
) -> None:
    """Keep the times a file had elsewhere (imports)."""
    await conn.execute(
        update(files)
        .where(files.c.owner == owner, files.c.path == path)
        .values(created=created, last_modified=modified)
    )


def _move_subtree(table, owner: str, old: str, new: str):
    return (
        update(table)
        .where(table.c.owner == owner, _subtree(table.c.path, old))
        .values(path=_moved(table.c.path, old, new))
        .returning(table.c.path)
        .cte(f"moved_{table.name}")
    )


async def rename(conn: AsyncConnection, owner: str, old: str, new: str) -> None:
    """Move a file or a whole directory tree; checkpoints follow their file rows.

    One statement: the directory and file updates are data-modifying CTEs and
    the parent foreign keys are checked at commit.
    """
    moved_dirs = _move_subtree(directories, owner, old, new)
    moved_files = _move_subtree(files, owner, old, new)
    await conn.execute(
        select(
            select(func.count()).select_from(moved_dirs).scalar_subquery(),
            select(func.count()).select_from(moved_files).scalar_subquery(),
        )
    )
    await touch_directory(conn, owner, paths.split(old)[0])
    await touch_directory(conn, owner, paths.split(new)[0])


async def copy_tree(conn: AsyncConnection, owner: str, source: str, target: str) -> None:
    """Copy a file or directory tree server-side (content never leaves the database)."""
    await conn.execute(
        insert(directories).from_select(
            ["owner", "path"],
            select(directories.c.owner, _moved(directories.c.path, source, target)).where(
                directories.c.owner == owner, _subtree(directories.c.path, source)
            ),
        )
    )
    await conn.execute(
        insert(files).from_select(
            ["owner", "path", "content", "size", "sha256"],
            select(
                files.c.owner,
                _moved(files.c.path, source, target),
                files.c.content,
                files.c.size,
                files.c.sha256,
            ).where(files.c.owner == owner, _subtree(files.c.path, source)),
        )
    )
    await touch_directory(conn, owner, paths.split(target)[0])


async def delete_tree(conn: AsyncConnection, owner: str, path: str) -> None:
    """Delete a file or a directory with everything below it (checkpoints cascade)."""
    await conn.execute(delete(files).where(files.c.owner == owner, _subtree(files.c.path, path)))
    await conn.execute(
        delete(directories).where(directories.c.owner == owner, _subtree(directories.c.path, path))
    )
    await touch_directory(conn, owner, paths.split(path)[0])


async def has_children(conn: AsyncConnection, owner: str, path: str) -> bool:
    found = await conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM contents.directories"
            "  WHERE owner = :owner AND parent = :path AND path <> '')"
            " OR EXISTS (SELECT 1 FROM contents.files WHERE owner = :owner AND parent = :path)"
        ),
        {"owner": owner, "path": path},
    )
    return bool(found.scalar())


async def touch_directory(conn: AsyncConnection, owner: str, path: str) -> None:
    """A directory's ``last_modified`` changes when entries appear, vanish or are
    rewritten in it (as with the file manager, which saves by atomic rename)."""
    await conn.execute(
        update(directories)
        .where(directories.c.owner == owner, directories.c.path == path)
        .values(last_modified=func.now())
    )


# -- chunked uploads ---------------------------------------------------------


async def start_upload(conn: AsyncConnection, owner: str, path: str, content: bytes) -> None:
    """Chunk 1: forget any earlier attempt at this path, keep this chunk."""
    await discard_upload(conn, owner, path)
    await add_chunk(conn, owner, path, 1, content)


async def discard_abandoned_uploads(
    conn: AsyncConnection, max_age_seconds: float, owner: str | None = None
) -> int:
    """Remove every upload (of ``owner``, or of everyone) whose newest chunk is older
    than ``max_age_seconds``; return how many chunks went.

    A whole upload goes or stays: dropping only its old chunks would let a slow
    upload carry on without its beginning.
    """
    newest = func.max(upload_chunks.c.received)
    abandoned = (
        select(upload_chunks.c.owner, upload_chunks.c.path)
        .group_by(upload_chunks.c.owner, upload_chunks.c.path)
        .having(newest < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, max_age_seconds))
    )
    if owner is not None:
        abandoned = abandoned.where(upload_chunks.c.owner == owner)
    result = await conn.execute(
        delete(upload_chunks).where(
            tuple_(upload_chunks.c.owner, upload_chunks.c.path).in_(abandoned)
        )
    )
    return result.rowcount


async def uploaded_so_far(conn: AsyncConnection, owner: str, path: str) -> tuple[int, int]:
    """(highest chunk number received, bytes received) for an upload in progress."""
    row = (
        await conn.execute(
            select(
                func.coalesce(func.max(upload_chunks.c.chunk), 0),
                func.coalesce(func.sum(func.length(upload_chunks.c.content)), 0),
            ).where(upload_chunks.c.owner == owner, upload_chunks.c.path == path)
        )
    ).one()
    return int(row[0]), int(row[1])


async def add_chunk(
    conn: AsyncConnection, owner: str, path: str, number: int, content: bytes
) -> None:
    await conn.execute(
        insert(upload_chunks).values(owner=owner, path=path, chunk=number, content=content)
    )


async def discard_upload(conn: AsyncConnection, owner: str, path: str) -> None:
    await conn.execute(
        delete(upload_chunks).where(upload_chunks.c.owner == owner, upload_chunks.c.path == path)
    )


async def finish_upload(conn: AsyncConnection, owner: str, path: str) -> FileRecord:
    """Join the chunks into the file in the database (never in Python memory)."""
    if await kind_of(conn, owner, path) == "directory":
        raise WrongKind(f"{path!r} is a directory, not a file")
    row = (
        await conn.execute(
            text(
                "WITH joined AS ("
                "  SELECT string_agg(content, ''::bytea ORDER BY chunk) AS content"
                "  FROM contents.upload_chunks WHERE owner = :owner AND path = :path)"
                " INSERT INTO contents.files AS f (owner, path, content, size, sha256)"
                " SELECT :owner, :path, content, length(content), sha256(content) FROM joined"
                " ON CONFLICT (owner, path) DO UPDATE SET content = excluded.content,"
                "  size = excluded.size, sha256 = excluded.sha256, last_modified = now()"
                " RETURNING path, size, sha256, created, last_modified"
            ),
            {"owner": owner, "path": path},
        )
    ).one()
    await discard_upload(conn, owner, path)
    await touch_directory(conn, owner, paths.split(path)[0])
    return _file_record(row, with_content=False)


# -- checkpoints -------------------------------------------------------------


def _file_id(owner: str, path: str):
    return select(files.c.id).where(files.c.owner == owner, files.c.path == path).scalar_subquery()


async def create_checkpoint(
    conn: AsyncConnection, owner: str, path: str, keep: int
) -> CheckpointRecord | None:
    """Copy the file's content into a new checkpoint; keep only the ``keep`` newest."""
    row = (
        await conn.execute(
            insert(checkpoints)
            .from_select(
                ["owner", "file_id", "content", "size", "sha256"],
                select(
                    files.c.owner, files.c.id, files.c.content, files.c.size, files.c.sha256
                ).where(files.c.owner == owner, files.c.path == path),
            )
            .returning(checkpoints.c.id, checkpoints.c.created, checkpoints.c.file_id)
        )
    ).first()
    if row is None:
        return None
    newest = (
        select(checkpoints.c.id)
        .where(checkpoints.c.file_id == row.file_id)
        .order_by(checkpoints.c.id.desc())
        .limit(keep)
    )
    await conn.execute(
        delete(checkpoints).where(
            checkpoints.c.file_id == row.file_id, checkpoints.c.id.not_in(newest)
        )
    )
    return CheckpointRecord(row.id, row.created)


async def add_checkpoint(
    conn: AsyncConnection,
    owner: str,
    path: str,
    content: bytes,
    *,
    created: datetime | None = None,
) -> None:
    """A checkpoint with given content (imports); :func:`create_checkpoint` copies the file."""
    values = {
        "owner": owner,
        "file_id": _file_id(owner, path),
        "content": content,
        "size": len(content),
        "sha256": hashlib.sha256(content).digest(),
    }
    if created is not None:
        values["created"] = created
    await conn.execute(insert(checkpoints).values(values))


async def list_checkpoints(conn: AsyncConnection, owner: str, path: str) -> list[CheckpointRecord]:
    """Oldest first, as JupyterLab expects (it reverts to the last one)."""
    rows = await conn.execute(
        select(checkpoints.c.id, checkpoints.c.created)
        .where(checkpoints.c.owner == owner, checkpoints.c.file_id == _file_id(owner, path))
        .order_by(checkpoints.c.id)
    )
    return [CheckpointRecord(r.id, r.created) for r in rows]


async def restore_checkpoint(
    conn: AsyncConnection, owner: str, path: str, checkpoint_id: int
) -> bool:
    """Copy a checkpoint's content back into its file; False if there is no such checkpoint."""
    restored = await conn.execute(
        update(files)
        .where(
            files.c.owner == owner,
            files.c.path == path,
            checkpoints.c.id == checkpoint_id,
            checkpoints.c.file_id == files.c.id,
        )
        .values(
            content=checkpoints.c.content,
            size=checkpoints.c.size,
            sha256=checkpoints.c.sha256,
            last_modified=func.now(),
        )
    )
    return restored.rowcount == 1


async def delete_checkpoint(
    conn: AsyncConnection, owner: str, path: str, checkpoint_id: int
) -> bool:
    deleted = await conn.execute(
        delete(checkpoints).where(
            checkpoints.c.owner == owner,
            checkpoints.c.id == checkpoint_id,
            checkpoints.c.file_id == _file_id(owner, path),
        )
    )
    return deleted.rowcount == 1


async def delete_owner(conn: AsyncConnection, owner: str) -> None:
    """Remove everything a role owns (on user removal)."""
    for table in (upload_chunks, checkpoints, files, directories):
        await conn.execute(delete(table).where(table.c.owner == owner))


async def change_owner(conn: AsyncConnection, owner: str, new_owner: str) -> None:
    """Give everything ``owner`` stores to ``new_owner`` (on user rename; the
    directory foreign keys are deferred, so the order of the tables is free)."""
    for table in (directories, files, checkpoints, upload_chunks):
        await conn.execute(update(table).where(table.c.owner == owner).values(owner=new_owner))
