"""The hub's housekeeping removes every user's abandoned uploads (its superuser sees all rows)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from traitlets.config import Config

from tests.hub.conftest import running_hub


async def test_the_hub_removes_abandoned_uploads_of_every_user(database_url, tmp_path) -> None:
    config = Config()
    config.GilHub.upload_chunk_max_age = 2.0
    async with running_hub(database_url, tmp_path, config) as hub:
        async with hub.app.db.begin() as conn:
            for owner in ("ann", "ben"):
                await conn.execute(
                    text(
                        "INSERT INTO contents.upload_chunks (owner, path, chunk, content)"
                        " VALUES (:owner, 'upload.bin', 1, 'x')"
                    ),
                    {"owner": owner},
                )
        async with asyncio.timeout(60):  # no duration asserted: until housekeeping has run
            while True:
                async with hub.app.db.connect() as conn:
                    left = await conn.scalar(text("SELECT count(*) FROM contents.upload_chunks"))
                if left == 0:
                    break
                await asyncio.sleep(0.2)
