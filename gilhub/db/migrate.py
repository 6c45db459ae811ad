"""Versioned plain-SQL migrations.

Files in ``sql/`` are named ``NNN_description.sql`` and applied in order, each
in its own transaction, under a PostgreSQL advisory lock so that two hubs (or a
hub and a command-line tool) starting together never apply one twice. Applied
versions are recorded in ``gilhub_migrations``; running again is a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.resources import sql_dir

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# An arbitrary constant shared by every gilhub process: "gilhub" in ASCII.
_ADVISORY_LOCK_KEY = 0x67696C687562


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number in {directory}")
    return found


async def apply_migrations(engine: AsyncEngine, directory: Path | None = None) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now."""
    migrations = discover(directory)
    applied_now: list[int] = []
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        try:
            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS gilhub_migrations ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " applied timestamptz NOT NULL DEFAULT now())"
                )
            )
            await conn.commit()
            done = set(
                (await conn.execute(text("SELECT version FROM gilhub_migrations"))).scalars()
            )
            await conn.commit()
            for migration in migrations:
                if migration.version in done:
                    continue
                async with conn.begin():
                    await conn.exec_driver_sql(migration.read())
                    await conn.execute(
                        text("INSERT INTO gilhub_migrations (version, name) VALUES (:v, :n)"),
                        {"v": migration.version, "n": migration.name},
                    )
                applied_now.append(migration.version)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            await conn.commit()
    return applied_now
