"""Bad input gets a clear error and loses nothing.

The manager is driven in-process against a real database where only the
error matters, and over the REST API of a real jupyter_server where the HTTP
status is the point (413, the database going away mid-request).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nbformat
import pytest
from nbformat.sign import NotebookNotary
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.web import HTTPError

from gilhub.contents import PostgresContentsManager
from gilhub.contents.paths import MAX_PATH_LENGTH
from gilhub.contents.roles import ensure_user_role
from tests.contents.harness import (
    ContentsClient,
    user_server_api,
    user_url_for,
)

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
async def user_url(engine: AsyncEngine, database_url: URL) -> str:
    return await user_url_for(engine, database_url, "mallory")


@pytest.fixture(scope="module")
async def manager(user_url: str) -> AsyncIterator[PostgresContentsManager]:
    cm = PostgresContentsManager(
        db_url=user_url,
        max_file_size=LIMIT,
        notary=NotebookNotary(db_file=":memory:", secret=b"test secret"),
    )
    try:
        yield cm
    finally:
        await cm.close()


@pytest.fixture
async def home(manager: PostgresContentsManager, request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:100]
    await manager.save({"type": "directory"}, name)
    return name


async def _status(awaitable) -> int:
    with pytest.raises(HTTPError) as caught:
        await awaitable
    return caught.value.status_code


async def _text(manager: PostgresContentsManager, path: str) -> str:
    return (await manager.get(path, format="text"))["content"]


async def _names(manager: PostgresContentsManager, path: str) -> set[str]:
    return {entry["name"] for entry in (await manager.get(path))["content"]}


def _file(content: str) -> dict:
    return {"type": "file", "format": "text", "content": content}


BAD_NAMES = [
    "../escape.txt",
    "a/../../escape.txt",
    "./here.txt",
    "a//b.txt",
    "back\\slash.txt",
    "nul\x00byte.txt",
    "x" * 256 + ".txt",
    "/".join(["d" * 200] * 25),
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_paths_are_400_and_write_nothing(manager, home, name):
    await manager.save(_file("safe"), f"{home}/safe.txt")
    bad = f"{home}/{name}"
    assert await _status(manager.save(_file("x"), bad)) == 400
    assert await _status(manager.get(bad)) == 400
    assert await _status(manager.delete(bad)) == 400
    assert await _status(manager.rename(f"{home}/safe.txt", bad)) == 400
    assert await _status(manager.copy(f"{home}/safe.txt", bad)) == 400
    assert await _names(manager, home) == {"safe.txt"}


async def test_the_longest_allowed_path_works(manager, home):
    deep = home
    while len(f"{deep}/{'d' * 150}".encode()) <= MAX_PATH_LENGTH - 20:
        deep = f"{deep}/{'d' * 150}"
        await manager.save({"type": "directory"}, deep)
    longest = f"{deep}/" + "f" * (MAX_PATH_LENGTH - len(deep) - 1)
    await manager.save(_file("deep"), longest)
    assert await _text(manager, longest) == "deep"
    assert await _status(manager.save(_file("x"), longest + "x")) == 400


async def test_absolute_looking_paths_stay_inside_the_users_tree(manager, home):
    """A single leading slash is the API's own convention for 'from the root'."""
    await manager.save(_file("rooted"), f"/{home}/rooted.txt")
    assert await _text(manager, f"{home}/rooted.txt") == "rooted"
    assert await _status(manager.get(f"//{home}/rooted.txt")) == 400
    assert await _status(manager.save(_file("x"), "C:/windows.txt")) == 400
    await manager.save(_file("colon"), f"{home}/a:b.txt")
    assert await _text(manager, f"{home}/a:b.txt") == "colon"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="a-string"),
        pytest.param(["cells"], id="a-list"),
        pytest.param({"cells": 3, "nbformat": 4}, id="not-nbformat"),
        pytest.param(
            {"cells": [{"cell_type": "bogus"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
            id="bad-cell",
        ),
    ],
)
async def test_invalid_notebook_is_400_and_keeps_the_stored_one(manager, home, content):
    path = f"{home}/kept.ipynb"
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    await manager.save({"type": "notebook", "content": good}, path)
    assert await _status(manager.save({"type": "notebook", "content": content}, path)) == 400
    stored = (await manager.get(path))["content"]
    assert stored.cells[0].source == "1 + 1"


async def test_new_invalid_notebook_writes_nothing(manager, home):
    bad = {"type": "notebook", "content": {"cells": "nope"}}
    assert await _status(manager.save(bad, f"{home}/new.ipynb")) == 400
    assert await _names(manager, home) == set()


async def test_bad_base64_is_400(manager, home):
    model = {"type": "file", "format": "base64", "content": "@@@ not base64 @@@"}
    assert await _status(manager.save(model, f"{home}/bin.dat")) == 400
    assert await _names(manager, home) == set()


async def test_rename_onto_an_existing_name_is_409_and_keeps_both(manager, home):
    await manager.save(_file("one"), f"{home}/one.txt")
    await manager.save(_file("two"), f"{home}/two.txt")
    await manager.save({"type": "directory"}, f"{home}/dir")
    assert await _status(manager.rename(f"{home}/one.txt", f"{home}/two.txt")) == 409
    assert await _status(manager.rename(f"{home}/one.txt", f"{home}/dir")) == 409
    assert await _status(manager.rename(f"{home}/dir", f"{home}/one.txt")) == 409
    assert await _text(manager, f"{home}/one.txt") == "one"
    assert await _text(manager, f"{home}/two.txt") == "two"


async def test_rename_into_itself_or_a_missing_directory(manager, home):
    await manager.save({"type": "directory"}, f"{home}/tree")
    assert await _status(manager.rename(f"{home}/tree", f"{home}/tree/sub")) == 400
    assert await _status(manager.rename(f"{home}/tree", f"{home}/nowhere/tree")) == 404
    assert await _names(manager, home) == {"tree"}


async def test_delete_of_a_missing_file_is_404(manager, home):
    assert await _status(manager.delete(f"{home}/never-there.txt")) == 404
    assert await _status(manager.delete("")) == 400


async def test_save_into_a_missing_directory_is_404(manager, home):
    assert await _status(manager.save(_file("x"), f"{home}/missing/x.txt")) == 404
    assert await _names(manager, home) == set()


async def test_file_and_directory_cannot_share_a_name(manager, home):
    await manager.save(_file("a file"), f"{home}/name")
    assert await _status(manager.save({"type": "directory"}, f"{home}/name")) == 400
    await manager.save({"type": "directory"}, f"{home}/dir")
    assert await _status(manager.save(_file("x"), f"{home}/dir")) == 400
    assert await _text(manager, f"{home}/name") == "a file"


def _chunk(data: bytes, number: int) -> dict:
    content = base64.b64encode(data).decode("ascii")
    return {"type": "file", "format": "base64", "content": content, "chunk": number}


async def test_out_of_order_chunk_is_400_and_loses_nothing(manager, home):
    path = f"{home}/upload.bin"
    await manager.save(_file("old version"), path)
    await manager.save(_chunk(b"A" * 10, 1), path)
    assert await _status(manager.save(_chunk(b"C" * 10, 3), path)) == 400
    assert await _text(manager, path) == "old version"
    await manager.save(_chunk(b"B" * 10, 2), path)
    assert await _text(manager, path) == "old version"
    model = await manager.save(_chunk(b"C" * 10, -1), path)
    assert model["size"] == 30
    assert await _text(manager, path) == "A" * 10 + "B" * 10 + "C" * 10


async def test_chunk_without_a_first_chunk_is_400(manager, home):
    assert await _status(manager.save(_chunk(b"x", 2), f"{home}/orphan.bin")) == 400
    assert await _status(manager.save(_chunk(b"x", -1), f"{home}/orphan.bin")) == 400
    assert await _status(manager.save(_chunk(b"x", 0), f"{home}/orphan.bin")) == 400
    assert await _names(manager, home) == set()


async def test_chunk_one_restarts_an_upload(manager, home):
    path = f"{home}/restart.bin"
    await manager.save(_chunk(b"first try", 1), path)
    await manager.save(_chunk(b"second", 1), path)
    await manager.save(_chunk(b" try", -1), path)
    assert await _text(manager, path) == "second try"


async def test_over_the_limit_is_413_and_writes_nothing(manager, home):
    path = f"{home}/big.txt"
    await manager.save(_file("small"), path)
    with pytest.raises(HTTPError) as caught:
        await manager.save(_file("x" * (LIMIT + 1)), path)
    assert caught.value.status_code == 413
    assert "max_file_size" in caught.value.log_message
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("y" * LIMIT)])
    assert await _status(manager.save({"type": "notebook", "content": notebook}, path)) == 413
    assert await _text(manager, path) == "small"


async def test_chunked_upload_over_the_limit_is_413_and_keeps_the_old_file(manager, home):
    path = f"{home}/big.bin"
    await manager.save(_file("old"), path)
    piece = b"z" * (LIMIT // 2)
    await manager.save(_chunk(piece, 1), path)
    await manager.save(_chunk(piece, 2), path)
    assert await _status(manager.save(_chunk(piece, -1), path)) == 413
    assert await _text(manager, path) == "old"
    # The failed upload was discarded: a late chunk cannot resurrect it.
    assert await _status(manager.save(_chunk(b"!", -1), path)) == 400


# -- the database going away ------------------------------------------------------


async def _terminate_sessions(engine: AsyncEngine, role: str, *, waiting: bool) -> int:
    """End ``role``'s backends (only those blocked on a lock when ``waiting``)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE usename = :role AND pid <> pg_backend_pid()"
                " AND (NOT :waiting OR wait_event_type = 'Lock')"
            ),
            {"role": role, "waiting": waiting},
        )
        return result.scalar_one()


async def _terminate_when_blocked(engine: AsyncEngine, role: str) -> None:
    for _ in range(600):
        if await _terminate_sessions(engine, role, waiting=True):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no session of {role} ever waited on the lock")


async def _fails_mid_write(engine: AsyncEngine, role: str, path: str, write) -> Exception:
    """Run ``write`` while the file row is locked; kill its session while it waits."""
    async with engine.connect() as locker:
        await locker.execute(
            text("SELECT 1 FROM contents.files WHERE owner = :o AND path = :p FOR UPDATE"),
            {"o": role, "p": path},
        )
        attempt = asyncio.ensure_future(write())
        await _terminate_when_blocked(engine, role)
        outcome = await asyncio.gather(attempt, return_exceptions=True)
        await locker.rollback()
    return outcome[0]


async def test_database_gone_mid_write_is_503_and_keeps_the_stored_version(manager, home, engine):
    role = await ensure_user_role(engine, "mallory")
    path = f"{home}/precious.txt"
    await manager.save(_file("version 1"), path)
    error = await _fails_mid_write(
        engine, role, path, lambda: manager.save(_file("version 2"), path)
    )
    assert isinstance(error, HTTPError) and error.status_code == 503, error
    assert "the notebook database is unavailable" in error.log_message
    assert await _text(manager, path) == "version 1"
    await manager.save(_file("version 3"), path)
    assert await _text(manager, path) == "version 3"


async def test_database_gone_between_requests_is_not_noticed(manager, home, engine):
    path = f"{home}/steady.txt"
    await manager.save(_file("steady"), path)
    await _terminate_sessions(engine, await ensure_user_role(engine, "mallory"), waiting=False)
    assert await _text(manager, path) == "steady"


# -- the same over REST ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def rest_api(
    engine: AsyncEngine, database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ContentsClient]:
    workdir = Path(tmp_path_factory.mktemp("bad-input-server"))
    options = {"PostgresContentsManager.max_file_size": str(LIMIT)}
    async with user_server_api(engine, database_url, "rest-user", workdir, options) as api:
        yield api


async def test_rest_413_has_a_clear_message_and_writes_nothing(rest_api):
    response = await rest_api.save_text("too-big.txt", "x" * (LIMIT + 1))
    assert response.status_code == 413, response.text
    assert "max_file_size" in response.json()["message"]
    assert (await rest_api.get("too-big.txt")).status_code == 404


async def test_rest_database_gone_mid_request(rest_api, engine, database_url):
    role = await ensure_user_role(engine, "rest-user")
    assert (await rest_api.save_text("precious.txt", "version 1")).status_code in (200, 201)
    response = await _fails_mid_write(
        engine, role, "precious.txt", lambda: rest_api.save_text("precious.txt", "version 2")
    )
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 503, response.text
    assert "the notebook database is unavailable" in response.json()["message"]
    model = (await rest_api.get("precious.txt")).json()
    assert model["content"] == "version 1"
    assert (await rest_api.save_text("precious.txt", "version 3")).status_code == 200
    assert (await rest_api.get("precious.txt")).json()["content"] == "version 3"


async def test_rest_files_download_serves_the_stored_bytes(rest_api):
    """``/files/…`` (downloads, images in notebooks) goes through the manager too."""
    payload = bytes(range(256)) * 4
    assert (await rest_api.save_bytes("download.bin", payload)).status_code == 201
    response = await rest_api.http.get(f"{rest_api.server.url}files/download.bin")
    assert response.status_code == 200
    assert response.content == payload
    missing = await rest_api.http.get(f"{rest_api.server.url}files/..%2Fetc%2Fpasswd")
    assert missing.status_code in (400, 404)
