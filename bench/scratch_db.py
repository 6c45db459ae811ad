"""A scratch database for a benchmark: an embedded PostgreSQL in a temporary directory,
migrated, and removed with everything in it afterwards."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.db import apply_migrations, create_engine
from gilhub.db.embedded import start_embedded


@dataclass(frozen=True)
class ScratchDatabase:
    directory: Path  # the temporary directory (the cluster is in its data/)
    url: URL  # the superuser's
    engine: AsyncEngine  # the superuser's, migrated


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[ScratchDatabase]:
    """A migrated embedded PostgreSQL for the benchmark's life, stopped and deleted after."""
    with tempfile.TemporaryDirectory() as scratch:
        database = start_embedded(Path(scratch) / "data")
        engine = create_engine(database.url)
        try:
            await apply_migrations(engine)
            yield ScratchDatabase(Path(scratch), database.url, engine)
        finally:
            await engine.dispose()
            database.stop()
