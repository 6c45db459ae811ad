"""Checkpoints over REST: create, list, restore, delete, and how many are kept."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from tests.contents.assertions import status, timestamp
from tests.contents.harness import ContentsClient

GILHUB_DEFAULT_MAX_CHECKPOINTS = 5


async def create_checkpoint(api: ContentsClient, path: str) -> dict:
    response = status(await api.create_checkpoint(path), 201)
    checkpoint = response.json()
    assert set(checkpoint) == {"id", "last_modified"}
    assert isinstance(checkpoint["id"], str) and checkpoint["id"]
    timestamp(checkpoint["last_modified"])
    assert response.headers["Location"].split("/")[-1] == checkpoint["id"]
    return checkpoint


async def test_saving_a_new_notebook_creates_one_checkpoint(contents_api: ContentsClient):
    """jupyter_server's rule: one checkpoint always exists for a notebook (not for files)."""
    api = contents_api
    status(await api.save_notebook(api.at("a.ipynb"), new_notebook()), 201)
    assert len(status(await api.list_checkpoints(api.at("a.ipynb")), 200).json()) == 1
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    assert status(await api.list_checkpoints(api.at("a.txt")), 200).json() == []


async def test_notebook_checkpoint_cycle(contents_api: ContentsClient):
    api = contents_api
    path = api.at("a.ipynb")
    status(await api.save_notebook(path, new_notebook()), 201)
    checkpoint = await create_checkpoint(api, path)
    changed = new_notebook(cells=[new_markdown_cell("Created by test")])
    status(await api.save_notebook(path, changed), 200)
    assert checkpoint in status(await api.list_checkpoints(path), 200).json()
    assert (await api.model(path))["content"]["cells"][0]["source"] == "Created by test"

    status(await api.restore_checkpoint(path, checkpoint["id"]), 204)
    assert nbformat.from_dict((await api.model(path))["content"]).cells == []

    status(await api.delete_checkpoint(path, checkpoint["id"]), 204)
    assert checkpoint not in status(await api.list_checkpoints(path), 200).json()


async def test_file_checkpoint_cycle(contents_api: ContentsClient):
    api = contents_api
    path = api.at("a.txt")
    status(await api.save_text(path, "original"), 201)
    checkpoint = await create_checkpoint(api, path)
    status(await api.save_text(path, "original\nsecond line"), 200)
    assert status(await api.list_checkpoints(path), 200).json() == [checkpoint]
    status(await api.restore_checkpoint(path, checkpoint["id"]), 204)
    assert (await api.model(path))["content"] == "original"


async def test_binary_checkpoint_restores_bytes(contents_api: ContentsClient):
    api = contents_api
    path = api.at("a.bin")
    status(await api.save_bytes(path, b"\xff\x00 first"), 201)
    checkpoint = await create_checkpoint(api, path)
    status(await api.save_bytes(path, b"\xfe second"), 200)
    status(await api.restore_checkpoint(path, checkpoint["id"]), 204)
    model = await api.model(path, format="base64")
    assert model["content"].strip() == "/wAgZmlyc3Q="


async def test_checkpoints_follow_a_renamed_file(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "first"), 201)
    checkpoint = await create_checkpoint(api, api.at("a.txt"))
    status(await api.rename(api.at("a.txt"), api.at("b.txt")), 200)
    assert status(await api.list_checkpoints(api.at("b.txt")), 200).json() == [checkpoint]
    assert status(await api.list_checkpoints(api.at("a.txt")), 200).json() == []


async def test_delete_unknown_checkpoint_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.delete_checkpoint(api.at("a.txt"), "no-such-checkpoint"), 404)


async def test_number_of_checkpoints_kept(contents_api: ContentsClient):
    """Differs by design: the file manager keeps one checkpoint per file (always the
    same id, overwritten); gilhub keeps the newest ``max_checkpoints`` (default 5)."""
    api = contents_api
    path = api.at("many.txt")
    status(await api.save_text(path, "version 0"), 201)
    ids = []
    for version in range(1, GILHUB_DEFAULT_MAX_CHECKPOINTS + 3):
        ids.append((await create_checkpoint(api, path))["id"])
        status(await api.save_text(path, f"version {version}"), 200)
    listed = [c["id"] for c in status(await api.list_checkpoints(path), 200).json()]
    if api.kind == "file":
        assert len(set(ids)) == 1 and listed == ids[-1:]
    else:
        assert len(set(ids)) == len(ids)
        assert sorted(listed) == sorted(ids[-GILHUB_DEFAULT_MAX_CHECKPOINTS:])
    status(await api.restore_checkpoint(path, ids[-1]), 204)
    assert (await api.model(path))["content"] == f"version {len(ids) - 1}"


async def test_checkpoint_of_missing_file(contents_api: ContentsClient):
    """Differs in the code only: gilhub says 404, the file manager fails with a 500."""
    api = contents_api
    status(await api.create_checkpoint(api.at("missing.txt")), api.per_kind(file=500, postgres=404))
    assert status(await api.list_checkpoints(api.at("missing.txt")), 200).json() == []


async def test_restore_unknown_checkpoint(contents_api: ContentsClient):
    """Differs in the code only: gilhub says 404, the file manager fails with a 500.
    Either way the file stays as it was."""
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "as it was"), 201)
    response = await api.restore_checkpoint(api.at("a.txt"), "no-such-checkpoint")
    status(response, api.per_kind(file=500, postgres=404))
    assert (await api.model(api.at("a.txt")))["content"] == "as it was"
