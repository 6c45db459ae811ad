"""Checkpoints: bounded per file, restored byte for byte, moved and deleted with their file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nbformat
import pytest
from nbformat.sign import NotebookNotary
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from tornado.web import HTTPError
from traitlets.config import Config

from gilhub.contents import PostgresCheckpoints, PostgresContentsManager
from gilhub.contents.roles import ensure_user_role, issue_role_password, user_database_url

KEEP = 3


@pytest.fixture(scope="module")
async def manager(engine: AsyncEngine, database_url: URL) -> AsyncIterator[PostgresContentsManager]:
    role = await ensure_user_role(engine, "checkpointer")
    password = await issue_role_password(engine, role)
    url = user_database_url(database_url, role, password)
    cm = PostgresContentsManager(
        db_url=url.render_as_string(hide_password=False),
        notary=NotebookNotary(db_file=":memory:", secret=b"test secret"),
        config=Config({"PostgresCheckpoints": {"max_checkpoints": KEEP}}),
    )
    try:
        yield cm
    finally:
        await cm.close()


def _file(content: str) -> dict:
    return {"type": "file", "format": "text", "content": content}


async def _text(cm: PostgresContentsManager, path: str) -> str:
    return (await cm.get(path, format="text"))["content"]


async def _checkpoint_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM contents.checkpoints"))).scalar_one()


async def test_checkpoints_class_is_configured(manager):
    assert isinstance(manager.checkpoints, PostgresCheckpoints)
    assert manager.checkpoints.max_checkpoints == KEEP


async def test_create_list_restore_delete(manager):
    await manager.save(_file("first"), "cycle.txt")
    first = await manager.create_checkpoint("cycle.txt")
    assert set(first) == {"id", "last_modified"}
    await manager.save(_file("second"), "cycle.txt")
    second = await manager.create_checkpoint("cycle.txt")
    assert [c["id"] for c in await manager.list_checkpoints("cycle.txt")] == [
        first["id"],
        second["id"],
    ]
    await manager.save(_file("third"), "cycle.txt")
    await manager.restore_checkpoint(first["id"], "cycle.txt")
    assert await _text(manager, "cycle.txt") == "first"
    await manager.delete_checkpoint(first["id"], "cycle.txt")
    assert [c["id"] for c in await manager.list_checkpoints("cycle.txt")] == [second["id"]]


async def test_restore_keeps_the_hash_and_size_right(manager):
    await manager.save(_file("short"), "hash.txt")
    checkpoint = await manager.create_checkpoint("hash.txt")
    await manager.save(_file("a much longer text"), "hash.txt")
    await manager.restore_checkpoint(checkpoint["id"], "hash.txt")
    model = await manager.get("hash.txt", content=False, require_hash=True)
    reference = await manager.get("hash.txt", require_hash=True)
    assert model["size"] == 5
    assert model["hash"] == reference["hash"]


async def test_only_the_newest_are_kept(manager):
    await manager.save(_file("v0"), "bounded.txt")
    made = []
    for version in range(1, 6):
        await manager.save(_file(f"v{version}"), "bounded.txt")
        made.append((await manager.create_checkpoint("bounded.txt"))["id"])
    kept = [c["id"] for c in await manager.list_checkpoints("bounded.txt")]
    assert kept == made[-KEEP:]
    await manager.restore_checkpoint(kept[0], "bounded.txt")
    assert await _text(manager, "bounded.txt") == "v3"


async def test_a_new_notebook_gets_one_checkpoint(manager):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    await manager.save({"type": "notebook", "content": notebook}, "new.ipynb")
    await manager.save({"type": "notebook", "content": notebook}, "new.ipynb")
    assert len(await manager.list_checkpoints("new.ipynb")) == 1


async def test_checkpoints_follow_a_rename_of_the_file_and_of_its_directory(manager):
    await manager.save({"type": "directory"}, "project")
    await manager.save(_file("kept"), "project/data.txt")
    checkpoint = await manager.create_checkpoint("project/data.txt")
    await manager.rename("project/data.txt", "project/renamed.txt")
    await manager.rename("project", "moved")
    assert await manager.list_checkpoints("moved/renamed.txt") == [checkpoint]
    await manager.save(_file("changed"), "moved/renamed.txt")
    await manager.restore_checkpoint(checkpoint["id"], "moved/renamed.txt")
    assert await _text(manager, "moved/renamed.txt") == "kept"


async def test_checkpoints_go_with_their_file(manager, engine):
    await manager.save({"type": "directory"}, "doomed")
    await manager.save(_file("x"), "doomed/a.txt")
    await manager.save(_file("y"), "doomed/b.txt")
    before = await _checkpoint_rows(engine)
    await manager.create_checkpoint("doomed/a.txt")
    await manager.create_checkpoint("doomed/b.txt")
    await manager.delete("doomed/a.txt")
    await manager.delete("doomed")
    assert await _checkpoint_rows(engine) == before
    await manager.save(_file("reborn"), "doomed.txt")
    assert await manager.list_checkpoints("doomed.txt") == []


async def test_a_copy_starts_without_checkpoints(manager):
    await manager.save(_file("original"), "source.txt")
    await manager.create_checkpoint("source.txt")
    copy = await manager.copy("source.txt", "")
    assert await manager.list_checkpoints(copy["path"]) == []


@pytest.mark.parametrize("checkpoint_id", ["999999", "not-a-number"])
async def test_unknown_checkpoints_are_404(manager, checkpoint_id):
    await manager.save(_file("x"), "lonely.txt")
    for attempt in (
        manager.restore_checkpoint(checkpoint_id, "lonely.txt"),
        manager.delete_checkpoint(checkpoint_id, "lonely.txt"),
    ):
        with pytest.raises(HTTPError) as caught:
            await attempt
        assert caught.value.status_code == 404


async def test_another_files_checkpoint_cannot_be_restored_or_deleted(manager):
    await manager.save(_file("mine"), "one.txt")
    await manager.save(_file("theirs"), "two.txt")
    checkpoint = await manager.create_checkpoint("two.txt")
    with pytest.raises(HTTPError):
        await manager.restore_checkpoint(checkpoint["id"], "one.txt")
    with pytest.raises(HTTPError):
        await manager.delete_checkpoint(checkpoint["id"], "one.txt")
    assert await _text(manager, "one.txt") == "mine"
    assert await manager.list_checkpoints("two.txt") == [checkpoint]


async def test_checkpoint_of_a_missing_file_is_404(manager):
    with pytest.raises(HTTPError) as caught:
        await manager.create_checkpoint("ghost.txt")
    assert caught.value.status_code == 404
    assert await manager.list_checkpoints("ghost.txt") == []
