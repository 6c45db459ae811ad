"""Chunks of an upload that was never finished are removed after ``upload_chunk_max_age``.

A real jupyter_server with the PostgreSQL manager sweeps its own user's
abandoned uploads; the query behind it (also run by the hub for everyone)
removes whole uploads only, never the first chunks of one still arriving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.contents.query import discard_abandoned_uploads
from gilhub.contents.roles import ensure_user_role
from tests.contents.harness import (
    ContentsClient,
    user_server_api,
)

USER = "uploader"
MAX_AGE = 2  # seconds; the server sweeps every second


@pytest.fixture(scope="module")
async def sweeping_api(
    engine: AsyncEngine, database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ContentsClient]:
    workdir = Path(tmp_path_factory.mktemp("sweeping-server"))
    options = {"PostgresContentsManager.upload_chunk_max_age": str(MAX_AGE)}
    async with user_server_api(engine, database_url, USER, workdir, options) as api:
        yield api


async def chunks_of(engine: AsyncEngine, owner: str, path: str | None = None) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT chunk FROM contents.upload_chunks WHERE owner = :owner"
                " AND (CAST(:path AS text) IS NULL OR path = :path) ORDER BY chunk"
            ),
            {"owner": owner, "path": path},
        )
        return list(rows.scalars())


async def test_an_interrupted_chunked_upload_is_removed_after_the_max_age(
    sweeping_api: ContentsClient, engine: AsyncEngine
) -> None:
    api = sweeping_api
    role = await ensure_user_role(engine, USER)
    assert (await api.save_text("kept.txt", "the stored file")).status_code == 201
    # chunks 1 and 2 of an upload onto kept.txt and of a new file; neither ever finishes
    for path in ("kept.txt", "new.bin"):
        for number in (1, 2):
            response = await api.send_chunk(path, b"x" * 1000, number)
            assert response.status_code in (200, 201), response.text

    async with asyncio.timeout(60):  # no duration asserted: wait until the sweep has run
        while await chunks_of(engine, role):
            await asyncio.sleep(0.2)
    assert (await api.model("kept.txt"))["content"] == "the stored file"
    assert (await api.get("new.bin")).status_code == 404
    # the next upload of the same path starts cleanly
    responses = await api.upload_chunked("new.bin", b"y" * 3000, chunk_size=1000)
    assert [r.status_code < 300 for r in responses] == [True] * 3, responses[-1].text
    assert (await api.model("new.bin"))["content"] == "y" * 3000


async def _add_chunk(engine: AsyncEngine, owner: str, path: str, chunk: int, age: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO contents.upload_chunks (owner, path, chunk, content, received)"
                " VALUES (:owner, :path, :chunk, 'x', now() - CAST(:age AS interval))"
            ),
            {"owner": owner, "path": path, "chunk": chunk, "age": age},
        )


async def test_only_uploads_whose_last_chunk_is_too_old_are_removed(engine: AsyncEngine) -> None:
    """As the hub's housekeeping runs it: the superuser, every owner at once."""
    await _add_chunk(engine, "ann", "abandoned.bin", 1, "3 hours")
    await _add_chunk(engine, "ann", "abandoned.bin", 2, "2 hours")
    await _add_chunk(engine, "ann", "slow.bin", 1, "3 hours")  # still arriving
    await _add_chunk(engine, "ann", "slow.bin", 2, "1 minute")
    await _add_chunk(engine, "ben", "abandoned.bin", 1, "2 hours")

    async with engine.begin() as conn:
        assert await discard_abandoned_uploads(conn, 3600, owner="ben") == 1
    assert await chunks_of(engine, "ann", "abandoned.bin") == [1, 2]
    async with engine.begin() as conn:
        assert await discard_abandoned_uploads(conn, 3600) == 2
    assert await chunks_of(engine, "ann", "abandoned.bin") == []
    assert await chunks_of(engine, "ann", "slow.bin") == [1, 2]
    assert await chunks_of(engine, "ben") == []
