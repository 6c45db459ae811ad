"""Copy a pgcontents database into gilhub's storage.

pgcontents (schema ``pgcontents``) keeps ``users(id)``, ``directories(user_id,
name)`` with names like ``/a/b/``, ``files(user_id, parent_name, name,
content, created_at)`` and ``remote_checkpoints(user_id, path, content,
last_modified)``. Content is the base64 text of the file, optionally
encrypted with ``cryptography.fernet``. Older pgcontents versions kept several
rows per file; the newest one is the file.

Each pgcontents user is copied into the gilhub user of the same name (or the
one ``user_map`` names), who must exist. Nothing already in gilhub is
overwritten. Everything not copied is reported with the reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gilhub.contents import paths, query
from gilhub.contents.errors import StorageError
from gilhub.contents.roles import ensure_user_role
from gilhub.users import get_user_by_name

#: Every Fernet token starts with version byte 0x80, "gAAAAA" in base64.
_FERNET_PREFIX = b"gAAAAA"


@dataclass
class ImportReport:
    copied: dict[str, int] = field(
        default_factory=lambda: {"users": 0, "directories": 0, "files": 0, "checkpoints": 0}
    )
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, what: str, why: str) -> None:
        self.skipped.append((what, why))

    def lines(self) -> list[str]:
        counts = ", ".join(f"{count} {kind}" for kind, count in self.copied.items())
        result = [f"Copied {counts}."]
        if self.skipped:
            result.append(f"Skipped {len(self.skipped)}:")
            result += [f"  {what}: {why}" for what, why in self.skipped]
        return result


class Undecodable(ValueError):
    """Stored content that cannot be turned back into the file's bytes."""


def fernet_from_keys(keys: Iterable[str]) -> MultiFernet | None:
    """One or several Fernet keys (the first encrypts, all decrypt), or None."""
    fernets = [Fernet(key.strip().encode("ascii")) for key in keys if key.strip()]
    return MultiFernet(fernets) if fernets else None


def decode_content(stored: bytes, fernet: MultiFernet | None) -> bytes:
    """pgcontents' stored bytes -> the file's bytes."""
    if stored.startswith(_FERNET_PREFIX):
        if fernet is None:
            raise Undecodable("encrypted; give the Fernet key (--fernet-key or --fernet-key-file)")
        try:
            stored = fernet.decrypt(stored)
        except InvalidToken as error:
            raise Undecodable("cannot be decrypted with the Fernet key(s) given") from error
    try:
        return base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Undecodable(f"content is not base64 ({error})") from error


def _api_path(pgcontents_path: str) -> str:
    """``/a/b/`` or ``/a/b.txt`` -> ``a/b`` or ``a/b.txt``, validated (InvalidPath if not)."""
    return paths.normalize(pgcontents_path)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


class PgcontentsImport:
    """One import run: source (pgcontents) and target (gilhub superuser) engines."""

    def __init__(
        self,
        source: AsyncEngine,
        target: AsyncEngine,
        *,
        user_map: Mapping[str, str] | None = None,
        fernet: MultiFernet | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.user_map = dict(user_map or {})
        self.fernet = fernet
        self.report = ImportReport()
        self._seen: set[str] = set()

    async def run(self) -> ImportReport:
        async with self.source.connect() as src:
            user_ids = await src.execute(text("SELECT id FROM pgcontents.users ORDER BY id"))
            for user_id in user_ids.scalars().all():
                await self._import_user(src, user_id)
        for unmapped in sorted(set(self.user_map) - self._seen):
            self.report.skip(f"user {unmapped}", "named in the user map but not in pgcontents")
        return self.report

    async def _import_user(self, src: AsyncConnection, user_id: str) -> None:
        self._seen.add(user_id)
        name = self.user_map.get(user_id, user_id)
        async with self.target.connect() as conn:
            user = await get_user_by_name(conn, name)
        if user is None:
            self.report.skip(
                f"user {user_id}",
                f"no gilhub user named {name!r} (add it with 'gilhub user add' or map it"
                " with --user-map)",
            )
            return
        role = user.db_role or await ensure_user_role(self.target, name)
        self.report.copied["users"] += 1
        await self._import_directories(src, user_id, role)
        imported = await self._import_files(src, user_id, role)
        await self._import_checkpoints(src, user_id, role, imported)

    async def _import_directories(self, src: AsyncConnection, user_id: str, role: str) -> None:
        rows = await src.execute(
            text("SELECT name FROM pgcontents.directories WHERE user_id = :u ORDER BY name"),
            {"u": user_id},
        )
        for (name,) in rows.all():
            try:
                path = _api_path(name)
            except StorageError as error:
                self.report.skip(f"{user_id}:{name}", str(error))
                continue
            if not path:
                continue
            async with self.target.begin() as conn:
                existed = await query.kind_of(conn, role, path) == "directory"
                try:
                    await query.make_directories(conn, role, path)
                except StorageError as error:
                    self.report.skip(f"{user_id}:{name}", str(error))
                    await conn.rollback()
                    continue
            if not existed:
                self.report.copied["directories"] += 1

    async def _import_files(self, src: AsyncConnection, user_id: str, role: str) -> set[str]:
        """Copy the newest version of each file, one at a time (streamed)."""
        imported: set[str] = set()
        rows = await src.stream(
            text(
                "SELECT DISTINCT ON (parent_name, name) parent_name, name, content, created_at,"
                " count(*) OVER (PARTITION BY parent_name, name) AS versions"
                " FROM pgcontents.files WHERE user_id = :u"
                " ORDER BY parent_name, name, created_at DESC, id DESC"
            ),
            {"u": user_id},
        )
        async for row in rows:
            label = f"{user_id}:{row.parent_name}{row.name}"
            if row.versions > 1:
                self.report.skip(f"{label} (older versions)", "only the newest version is copied")
            path = await self._copy_file(label, role, row.parent_name + row.name, row)
            if path is not None:
                imported.add(path)
        return imported

    async def _copy_file(self, label: str, role: str, full_name: str, row) -> str | None:
        try:
            path = _api_path(full_name)
            data = decode_content(bytes(row.content), self.fernet)
        except StorageError as error:
            self.report.skip(label, str(error))
            return None
        except Undecodable as error:
            self.report.skip(label, str(error))
            return None
        async with self.target.begin() as conn:
            if await query.kind_of(conn, role, path) is not None:
                self.report.skip(label, "already exists in gilhub (not overwritten)")
                return None
            await query.write_file(conn, role, path, data)
            moment = _utc(row.created_at)
            if moment is not None:
                await query.set_file_times(conn, role, path, created=moment, modified=moment)
        self.report.copied["files"] += 1
        return path

    async def _import_checkpoints(
        self, src: AsyncConnection, user_id: str, role: str, imported: set[str]
    ) -> None:
        present = await src.execute(text("SELECT to_regclass('pgcontents.remote_checkpoints')"))
        if present.scalar() is None:  # older pgcontents kept no separate checkpoints
            return
        rows = await src.stream(
            text(
                "SELECT path, content, last_modified FROM pgcontents.remote_checkpoints"
                " WHERE user_id = :u ORDER BY path, last_modified, id"
            ),
            {"u": user_id},
        )
        async for row in rows:
            label = f"{user_id}:{row.path} (checkpoint)"
            try:
                path = _api_path(row.path)
                data = decode_content(bytes(row.content), self.fernet)
            except StorageError as error:
                self.report.skip(label, str(error))
                continue
            except Undecodable as error:
                self.report.skip(label, str(error))
                continue
            if path not in imported:
                self.report.skip(label, "its file was not copied")
                continue
            await self._add_checkpoint(role, path, data, _utc(row.last_modified))

    async def _add_checkpoint(
        self, role: str, path: str, data: bytes, moment: datetime | None
    ) -> None:
        async with self.target.begin() as conn:
            await query.add_checkpoint(conn, role, path, data, created=moment)
        self.report.copied["checkpoints"] += 1
