"""Hidden files (dot names) and paths that must never reach storage.

Hidden files are created through the ``allow_hidden`` variant of the same
storage (see ``conftest.py``); the default server must then act as if they
did not exist.
"""

from __future__ import annotations

import sys

import pytest

from tests.contents.assertions import listing_names, status
from tests.contents.harness import ContentsClient


@pytest.fixture
async def with_hidden(
    contents_api: ContentsClient, variant_api
) -> tuple[ContentsClient, ContentsClient]:
    """(default server, allow_hidden server), ``home`` holding hidden and visible entries."""
    permissive = await variant_api("allow_hidden")
    status(await permissive.save_text(permissive.at(".secret.txt"), "hidden file"), 201)
    status(await permissive.mkdir(permissive.at(".hdir")), 201)
    status(await permissive.save_text(permissive.at(".hdir", "visible.txt"), "in hidden dir"), 201)
    status(await permissive.save_text(permissive.at("shown.txt"), "shown"), 201)
    return contents_api, permissive


async def test_hidden_entries_are_not_listed(with_hidden):
    api, permissive = with_hidden
    assert listing_names(await api.model(api.home)) == {"shown.txt"}
    assert listing_names(await permissive.model(api.home)) == {".secret.txt", ".hdir", "shown.txt"}


@pytest.mark.parametrize("name", [".secret.txt", ".hdir", ".hdir/visible.txt"])
async def test_get_hidden_is_404(with_hidden, name: str):
    api, permissive = with_hidden
    status(await api.get(api.at(name)), 404)
    status(await permissive.get(api.at(name)), 200)


@pytest.mark.parametrize("name", [".secret.txt", ".hdir/visible.txt"])
async def test_files_download_of_hidden_is_404(with_hidden, name: str):
    api, permissive = with_hidden
    status(await api.http.get(f"{api.server.url}files/{api.at(name)}"), 404)
    status(await permissive.http.get(f"{permissive.server.url}files/{api.at(name)}"), 200)


async def test_create_hidden_is_400(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at(".new.txt"), "x"), 400)
    status(await api.mkdir(api.at(".newdir")), 400)
    status(
        await api.save(
            api.at("ok.txt"),
            {"type": "file", "format": "text", "content": "x", "path": api.at(".other.txt")},
        ),
        400,
    )
    status(await api.get(api.at(".new.txt")), 404)
    assert listing_names(await api.model(api.home)) == set()


async def test_change_hidden_is_400(with_hidden):
    api, permissive = with_hidden
    status(await api.delete(api.at(".secret.txt")), 400)
    status(await api.delete(api.at(".hdir", "visible.txt")), 400)
    status(await api.rename(api.at(".secret.txt"), api.at("out.txt")), 400)
    status(await api.rename(api.at("shown.txt"), api.at(".in.txt")), 400)
    status(await api.copy(api.at(".secret.txt"), api.home), 400)
    status(await api.copy(api.at("shown.txt"), api.at(".hdir")), 400)
    assert listing_names(await permissive.model(api.home)) == {".secret.txt", ".hdir", "shown.txt"}
    assert (await permissive.model(api.at(".secret.txt")))["content"] == "hidden file"


async def test_allow_hidden_can_change_hidden(with_hidden):
    """The file manager's own checkpoint directory, ``.ipynb_checkpoints``, shows up
    under ``allow_hidden``; gilhub keeps checkpoints out of the tree."""
    _, permissive = with_hidden
    status(await permissive.rename(permissive.at(".secret.txt"), permissive.at(".moved.txt")), 200)
    status(await permissive.delete(permissive.at(".hdir")), 204)
    names = listing_names(await permissive.model(permissive.home)) - {".ipynb_checkpoints"}
    assert names == {".moved.txt", "shown.txt"}


def bad_path_code(api: ContentsClient, file_manager_code: int) -> int:
    """gilhub refuses every bad path with 400 before any query; the file manager
    answers 404 (outside root, invalid path) or fails with a 500 (name too long)."""
    return api.per_kind(file=file_manager_code, postgres=400)


BAD_PATHS = [
    pytest.param("../../escape.txt", 404, id="dotdot-escaping-root"),
    pytest.param("bad\x00name.txt", 404, id="nul-byte"),
    pytest.param("x" * 300 + ".txt", 500, id="name-over-255-bytes"),
]


@pytest.mark.parametrize("name,file_manager_code", BAD_PATHS)
async def test_bad_path_on_save(contents_api: ContentsClient, name: str, file_manager_code: int):
    """Differs by design in the status code (see ``bad_path_code``); nothing is written."""
    api = contents_api
    status(await api.save_text(api.at(name), "x"), bad_path_code(api, file_manager_code))
    assert listing_names(await api.model(api.home)) == set()
    assert "escape.txt" not in listing_names(await api.model(""))


@pytest.mark.parametrize("name,file_manager_code", BAD_PATHS[:2])
async def test_bad_path_on_get(contents_api: ContentsClient, name: str, file_manager_code: int):
    api = contents_api
    status(await api.get(api.at(name)), bad_path_code(api, file_manager_code))


@pytest.mark.parametrize("name,file_manager_code", BAD_PATHS)
async def test_bad_path_as_rename_target(
    contents_api: ContentsClient, name: str, file_manager_code: int
):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.rename(api.at("a.txt"), api.at(name)), bad_path_code(api, file_manager_code))
    assert listing_names(await api.model(api.home)) == {"a.txt"}
    assert "escape.txt" not in listing_names(await api.model(""))


async def test_dotdot_as_copy_source(contents_api: ContentsClient):
    api = contents_api
    status(await api.copy("../outside.txt", api.home), bad_path_code(api, 404))
    assert listing_names(await api.model(api.home)) == set()


async def test_dotdot_in_body_path_of_rename(contents_api: ContentsClient):
    """A rename target is a JSON body, never URL-normalised: ``..`` must still be refused."""
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.rename(api.at("a.txt"), "../a.txt"), bad_path_code(api, 404))
    assert listing_names(await api.model(api.home)) == {"a.txt"}


async def test_windows_drive_path(contents_api: ContentsClient):
    """``C:/…`` names a drive, never a directory called ``C:``. gilhub refuses it (400)
    on every platform. The file manager answers 404 on Windows; elsewhere ``C:`` is an
    ordinary, missing directory and its save fails with a 500. Nothing is written."""
    api = contents_api
    expected = api.per_kind(file=404 if sys.platform == "win32" else 500, postgres=400)
    status(await api.save_text("C:/drive.txt", "x"), expected)
    assert "C:" not in listing_names(await api.model(""))
