"""The repository store against a real PostgreSQL: versions, conflicts, search."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.repository import store
from gilhub.repository.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from gilhub.repository.notebooks import parse_notebook, prepare_push, with_origin
from gilhub.repository.paths import normalize_path
from tests.repository.helpers import notebook_bytes

MAX = 1_000_000
ALICE = store.Actor("alice")
BOB = store.Actor("bob")
ADMIN = store.Actor("root", is_admin=True)


async def push(engine: AsyncEngine, path: str, content: bytes, author: str, base, **kw):
    prepared = prepare_push(path, content, strip=kw.pop("strip", True), max_size=MAX)
    async with engine.begin() as conn:
        return await store.push(conn, path=path, prepared=prepared, author=author, base=base, **kw)


async def test_push_creates_versions_and_identical_content_adds_none(engine):
    first = await push(engine, "a/one.ipynb", notebook_bytes("x = 1"), "alice", None, message="m1")
    assert first.created and first.version.number == 1 and first.entry.head == 1
    again = await push(engine, "a/one.ipynb", notebook_bytes("x = 1"), "alice", 1)
    assert not again.created and again.version.number == 1
    second = await push(engine, "a/one.ipynb", notebook_bytes("x = 2"), "bob", 1, label="v2")
    assert second.created and second.version.number == 2 and second.version.label == "v2"
    async with engine.connect() as conn:
        entry = await store.require_entry(conn, "a/one.ipynb")
        numbers = [v.number for v in await store.history(conn, entry)]
        assert numbers == [2, 1]
        first_content = (await store.get_version(conn, entry, 1)).content
        assert parse_notebook(first_content).cells[0].source == "x = 1"
        with pytest.raises(NotFound, match="no version 7"):
            await store.get_version(conn, entry, 7)


async def test_stale_push_is_a_conflict_naming_who_pushed_since(engine):
    await push(engine, "b/nb.ipynb", notebook_bytes("a"), "alice", None, message="start")
    await push(engine, "b/nb.ipynb", notebook_bytes("b"), "bob", 1, message="bob's change")
    with pytest.raises(Conflict) as raised:
        await push(engine, "b/nb.ipynb", notebook_bytes("c"), "alice", 1)
    assert "bob" in raised.value.message
    assert raised.value.details["head"] == 2
    assert [v["message"] for v in raised.value.details["since"]] == ["bob's change"]
    with pytest.raises(Conflict, match="already exists"):
        await push(engine, "b/nb.ipynb", notebook_bytes("d"), "carol", None)
    with pytest.raises(BadRequest, match="no version 9"):
        await push(engine, "b/nb.ipynb", notebook_bytes("e"), "carol", 9)


@pytest.mark.parametrize("path", ["c/race.ipynb", "c/new-race.ipynb"])
async def test_truly_concurrent_pushes_give_one_winner_and_one_conflict(engine, path):
    base = None
    if path == "c/race.ipynb":
        base = (await push(engine, path, notebook_bytes("base"), "alice", None)).version.number
    results = await asyncio.gather(
        push(engine, path, notebook_bytes("alice's"), "alice", base),
        push(engine, path, notebook_bytes("bob's"), "bob", base),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, store.PushResult)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(conflicts) == 1, results
    async with engine.connect() as conn:
        entry = await store.require_entry(conn, path)
        history = await store.history(conn, entry)
    expected = (base or 0) + 1
    assert entry.head == expected and [v.number for v in history][0] == expected
    assert len(history) == expected
    assert history[0].author == winners[0].version.author


async def test_outputs_are_stripped_unless_kept_and_origin_is_not_stored(engine):
    content = with_origin(notebook_bytes("print(1)", output="<b>hi</b>"), "d/o.ipynb", 9)
    result = await push(engine, "d/o.ipynb", content, "alice", None)
    kept = await push(engine, "d/kept.ipynb", content, "alice", None, strip=False)
    async with engine.connect() as conn:
        stripped = parse_notebook((await store.get_version(conn, result.entry)).content)
        full = parse_notebook((await store.get_version(conn, kept.entry)).content)
    assert stripped.cells[0].outputs == [] and "gilhub" not in stripped.metadata
    assert full.cells[0].outputs[0].data["text/html"] == "<b>hi</b>"


@pytest.mark.parametrize(
    ("path", "content", "error", "match"),
    [
        ("x.ipynb", b"{not json", BadRequest, "not valid JSON"),
        ("x.ipynb", b'{"a": 1}', BadRequest, "not a notebook"),
        ("x.ipynb", b"\xff\xfe", BadRequest, "not UTF-8"),
        (
            "x.ipynb",
            b'{"cells": 3, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
            BadRequest,
            "not valid",
        ),
        ("x.ipynb", b" " * (MAX + 1), TooLarge, "at most"),
    ],
)
def test_bad_content_is_refused_clearly(path, content, error, match):
    with pytest.raises(error, match=match):
        prepare_push(path, content, strip=True, max_size=MAX)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "../etc/passwd",
        "a/../../b",
        "/abs/path",
        "C:/windows",
        "a\\b",
        "a\x00b",
        "a//b",
        "./a",
        "a/",
        " a",
        "x" * 2000,
    ],
)
def test_paths_that_escape_or_are_malformed_are_refused(path):
    with pytest.raises(BadRequest):
        normalize_path(path)


async def test_kind_must_match_the_path(engine):
    with pytest.raises(BadRequest, match="JSON"):
        await push(engine, "e/notes.ipynb", b"plain text", "alice", None)
    file_content = prepare_push("e/plain.txt", b"x", strip=True, max_size=MAX)
    async with engine.begin() as conn:
        with pytest.raises(BadRequest, match=".ipynb"):
            await store.push(conn, path="e/x.ipynb", prepared=file_content, author="a", base=None)
    prepared = prepare_push("e/notes.txt", b"plain text", strip=True, max_size=MAX)
    async with engine.begin() as conn:
        result = await store.push(
            conn, path="e/notes.txt", prepared=prepared, author="a", base=None
        )
    assert result.entry.kind == "file"


async def test_search_finds_cell_text_path_tags_author_and_message(engine):
    await push(
        engine,
        "plasma/langmuir/density.ipynb",
        notebook_bytes("electron_temperature = fit_iv(curve)", markdown="Langmuir probe sweeps"),
        "dora",
        None,
        message="calibrated against the reference",
    )
    async with engine.begin() as conn:
        await store.set_tags(conn, "plasma/langmuir/density.ipynb", ["Probe", "iv-curve"], ALICE)
    async with engine.connect() as conn:
        for words in [
            "sweeps",
            "langmuir",
            "probe",
            "iv-curve",
            "dora",
            "calibrated",
            "electron_temperature",
            "density",
        ]:
            hits = await store.search(conn, words)
            assert [h.entry.path for h in hits] == ["plasma/langmuir/density.ipynb"], words
        assert await store.search(conn, "nonexistentword") == []


async def test_rename_delete_restore_permissions_and_history_kept(engine):
    await push(engine, "f/mine.ipynb", notebook_bytes("1"), "alice", None)
    await push(engine, "f/mine.ipynb", notebook_bytes("2"), "bob", 1)
    async with engine.begin() as conn:
        with pytest.raises(Forbidden):
            await store.rename(conn, "f/mine.ipynb", "f/theirs.ipynb", BOB)
    async with engine.begin() as conn:
        moved = await store.rename(conn, "f/mine.ipynb", "f/renamed.ipynb", ALICE)
    assert moved.path == "f/renamed.ipynb"
    async with engine.begin() as conn:
        with pytest.raises(BadRequest):
            await store.rename(conn, "f/renamed.ipynb", "f/renamed.txt", ALICE)
    async with engine.begin() as conn:
        deleted = await store.delete(conn, "f/renamed.ipynb", ADMIN)
    async with engine.connect() as conn:
        assert await store.get_entry(conn, "f/renamed.ipynb") is None
        assert deleted.id in [e.id for e in await store.deleted_entries(conn)]
    await push(engine, "f/renamed.ipynb", notebook_bytes("new"), "carol", None)
    async with engine.begin() as conn:
        with pytest.raises(Forbidden):
            await store.restore(conn, deleted.id, ALICE)
    async with engine.begin() as conn:
        with pytest.raises(Conflict, match="already taken"):
            await store.restore(conn, deleted.id, ADMIN)
    async with engine.begin() as conn:
        restored = await store.restore(conn, deleted.id, ADMIN, "f/restored.ipynb")
        assert [v.number for v in await store.history(conn, restored)] == [2, 1]
        feed = await store.activity(conn, limit=10)
    assert [e.action for e in feed][:3] == ["restore", "push", "delete"]


async def test_tags_and_labels_are_checked(engine):
    await push(engine, "g/t.ipynb", notebook_bytes("1"), "alice", None)
    async with engine.begin() as conn:
        with pytest.raises(BadRequest):
            await store.set_tags(conn, "g/t.ipynb", ["<script>alert(1)</script>"], ALICE)
        with pytest.raises(BadRequest):
            await store.set_label(conn, "g/t.ipynb", 1, "a b", ALICE)
        version = await store.set_label(conn, "g/t.ipynb", 1, "published", ALICE)
    assert version.label == "published"


async def test_browse_lists_one_level(engine):
    for path in ["h/x/1.ipynb", "h/x/2.ipynb", "h/y/deep/3.ipynb", "h/top.ipynb"]:
        await push(engine, path, notebook_bytes(path), "alice", None)
    async with engine.connect() as conn:
        folder = await store.browse(conn, "h/")
    assert folder.folders == [("x", 2), ("y", 1)]
    assert [e.path for e in folder.entries] == ["h/top.ipynb"]
