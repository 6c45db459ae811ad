"""Writing: save, new untitled, copy, rename, delete, over the REST API of both managers."""

from __future__ import annotations

import asyncio
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.contents.assertions import (
    check_model,
    created,
    decoded,
    listing_names,
    sha256,
    status,
    timestamp,
)
from tests.contents.harness import ContentsClient


async def test_save_new_then_existing(contents_api: ContentsClient):
    """PUT creates (201 + Location) and then overwrites (200); the answer has no content."""
    api = contents_api
    path = api.at("a.ipynb")
    created(await api.save_notebook(path, new_notebook()), path=path, type_="notebook")
    notebook = new_notebook(cells=[new_markdown_cell("Created by test ³")])
    model = check_model(
        status(await api.save_notebook(path, notebook), 200).json(), path=path, type_="notebook"
    )
    assert model["size"] > 0
    saved = nbformat.from_dict((await api.model(path))["content"])
    assert saved.cells[0].source == "Created by test ³"


async def test_last_modified_advances_on_save(contents_api: ContentsClient):
    api = contents_api
    path = api.at("clock.txt")
    first = timestamp(status(await api.save_text(path, "one"), 201).json()["last_modified"])
    await asyncio.sleep(0.05)  # a coarse filesystem clock must still see two instants
    second = timestamp(status(await api.save_text(path, "two"), 200).json()["last_modified"])
    assert second > first
    assert timestamp((await api.model(path))["last_modified"]) == second


async def test_directory_listing_reports_new_sizes(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("s.txt"), "x" * 10), 201)
    status(await api.save_text(api.at("s.txt"), "x" * 25), 200)
    (entry,) = (await api.model(api.home))["content"]
    assert entry["size"] == 25


async def test_save_base64_and_text(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_bytes(api.at("blob.bin"), b"\xffblob"), 201)
    assert decoded(await api.model(api.at("blob.bin"))) == b"\xffblob"
    status(await api.save_text(api.at("t.txt"), "ünicode téxt"), 201)
    assert (await api.model(api.at("t.txt")))["content"] == "ünicode téxt"


async def test_save_file_without_format_is_400(contents_api: ContentsClient):
    api = contents_api
    status(await api.save(api.at("f.txt"), {"type": "file", "content": "x"}), 400)
    status(await api.get(api.at("f.txt")), 404)


async def test_put_directory(contents_api: ContentsClient):
    api = contents_api
    path = api.at("New ∂ir")
    created(await api.mkdir(path), path=path, type_="directory")
    assert listing_names(await api.model(path)) == set()


async def test_large_file_round_trip(contents_api: ContentsClient):
    """A 5 MB binary file in one PUT comes back byte for byte, with size and hash."""
    api = contents_api
    data = os.urandom(5 * 1024 * 1024)
    status(await api.save_bytes(api.at("big.bin"), data), 201)
    model = await api.model(api.at("big.bin"), hash=1)
    assert decoded(model) == data
    assert model["size"] == len(data)
    assert model["hash"] == sha256(data)


async def test_new_untitled_names(contents_api: ContentsClient):
    api = contents_api
    cases = [
        ({"type": "notebook"}, "Untitled.ipynb", "notebook"),
        ({"ext": ".ipynb"}, "Untitled1.ipynb", "notebook"),
        ({"ext": ".txt"}, "untitled.txt", "file"),
        ({"type": "file", "ext": ".txt"}, "untitled1.txt", "file"),
        ({"type": "directory"}, "Untitled Folder", "directory"),
        ({"type": "directory"}, "Untitled Folder 1", "directory"),
        ({}, "untitled", "file"),
    ]
    for body, name, type_ in cases:
        created(await api.new_untitled(api.home, **body), path=api.at(name), type_=type_)
    assert listing_names(await api.model(api.home)) == {name for _, name, _ in cases}


async def test_new_untitled_contents(contents_api: ContentsClient):
    api = contents_api
    status(await api.new_untitled(api.home, type="notebook"), 201)
    notebook = nbformat.from_dict((await api.model(api.at("Untitled.ipynb")))["content"])
    nbformat.validate(notebook)
    assert notebook.nbformat == 4 and notebook.cells == []
    status(await api.new_untitled(api.home, ext=".txt"), 201)
    model = await api.model(api.at("untitled.txt"))
    assert (model["format"], model["content"], model["size"]) == ("text", "", 0)


async def test_new_untitled_in_missing_directory_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.new_untitled(api.at("nowhere"), type="notebook"), 404)


async def test_post_to_a_file_is_400(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.new_untitled(api.at("a.txt")), 400)


async def test_copy_file_names(contents_api: ContentsClient):
    """Same-directory copies are numbered ``-Copy1``, ``-Copy2``; a copy of a copy too."""
    api = contents_api
    status(await api.save_notebook(api.at("ç d.ipynb"), new_notebook()), 201)
    source = api.at("ç d.ipynb")
    created(await api.copy(source, api.home), path=api.at("ç d-Copy1.ipynb"), type_="notebook")
    created(await api.copy(source, api.home), path=api.at("ç d-Copy2.ipynb"), type_="notebook")
    created(
        await api.copy(api.at("ç d-Copy2.ipynb"), api.home),
        path=api.at("ç d-Copy3.ipynb"),
        type_="notebook",
    )


async def test_copy_to_other_directory_keeps_name(contents_api: ContentsClient):
    api = contents_api
    data = os.urandom(2048)
    status(await api.save_bytes(api.at("a.bin"), data), 201)
    status(await api.mkdir(api.at("other")), 201)
    created(
        await api.copy(api.at("a.bin"), api.at("other")),
        path=api.at("other", "a.bin"),
        type_="file",
    )
    created(
        await api.copy(api.at("a.bin"), api.at("other")),
        path=api.at("other", "a-Copy1.bin"),
        type_="file",
    )
    assert decoded(await api.model(api.at("other", "a.bin"))) == data
    assert decoded(await api.model(api.at("a.bin"))) == data


async def test_copy_directory(contents_api: ContentsClient):
    api = contents_api
    status(await api.mkdir(api.at("src")), 201)
    status(await api.save_text(api.at("src", "inner.txt"), "inner"), 201)
    created(await api.copy(api.at("src"), api.home), path=api.at("src-Copy1"), type_="directory")
    assert (await api.model(api.at("src-Copy1", "inner.txt")))["content"] == "inner"


async def test_copy_missing_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.copy(api.at("missing.txt"), api.home), 404)


async def test_copy_with_put_is_400(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.save(api.at("b.txt"), {"copy_from": api.at("a.txt")}), 400)


async def test_rename_file(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "content a"), 201)
    response = status(await api.rename(api.at("a.txt"), api.at("z.txt")), 200)
    assert response.headers["Location"].endswith("/api/contents/" + api.at("z.txt"))
    check_model(response.json(), path=api.at("z.txt"), type_="file")
    status(await api.get(api.at("a.txt")), 404)
    assert (await api.model(api.at("z.txt")))["content"] == "content a"
    assert listing_names(await api.model(api.home)) == {"z.txt"}


async def test_rename_with_leading_slash_is_relative_to_root(contents_api: ContentsClient):
    """API paths are relative to the root: ``/x`` means ``x``, never the machine's ``/``."""
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    response = status(await api.rename(api.at("a.txt"), "/" + api.at("b.txt")), 200)
    assert response.json()["path"] == api.at("b.txt")


async def test_rename_non_empty_directory(contents_api: ContentsClient):
    """Children, grandchildren and their checkpoints follow the directory."""
    api = contents_api
    status(await api.mkdir(api.at("old")), 201)
    status(await api.mkdir(api.at("old", "deeper")), 201)
    status(await api.save_text(api.at("old", "a.txt"), "a"), 201)
    status(await api.save_notebook(api.at("old", "deeper", "n.ipynb"), new_notebook()), 201)
    checkpoint = status(await api.create_checkpoint(api.at("old", "a.txt")), 201).json()
    status(await api.save_text(api.at("old", "a.txt"), "changed"), 200)

    response = status(await api.rename(api.at("old"), api.at("new")), 200)
    check_model(response.json(), path=api.at("new"), type_="directory")

    status(await api.get(api.at("old")), 404)
    status(await api.get(api.at("old", "a.txt")), 404)
    assert listing_names(await api.model(api.at("new"))) == {"deeper", "a.txt"}
    assert listing_names(await api.model(api.at("new", "deeper"))) == {"n.ipynb"}
    checkpoints = status(await api.list_checkpoints(api.at("new", "a.txt")), 200).json()
    assert [c["id"] for c in checkpoints] == [checkpoint["id"]]
    status(await api.restore_checkpoint(api.at("new", "a.txt"), checkpoint["id"]), 204)
    assert (await api.model(api.at("new", "a.txt")))["content"] == "a"


async def test_rename_onto_existing_is_409(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.save_text(api.at("b.txt"), "b"), 201)
    status(await api.rename(api.at("a.txt"), api.at("b.txt")), 409)
    assert (await api.model(api.at("a.txt")))["content"] == "a"
    assert (await api.model(api.at("b.txt")))["content"] == "b"


async def test_rename_directory_onto_existing_is_409(contents_api: ContentsClient):
    api = contents_api
    status(await api.mkdir(api.at("d1")), 201)
    status(await api.mkdir(api.at("d2")), 201)
    status(await api.save_text(api.at("d2", "keep.txt"), "keep"), 201)
    status(await api.rename(api.at("d1"), api.at("d2")), 409)
    assert listing_names(await api.model(api.at("d2"))) == {"keep.txt"}


async def test_rename_missing_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.rename(api.at("missing.txt"), api.at("other.txt")), 404)


async def test_rename_to_same_name_changes_nothing(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("same.txt"), "same"), 201)
    status(await api.rename(api.at("same.txt"), api.at("same.txt")), 200)
    assert (await api.model(api.at("same.txt")))["content"] == "same"


async def test_delete_file(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.delete(api.at("a.txt")), 204)
    status(await api.get(api.at("a.txt")), 404)
    assert listing_names(await api.model(api.home)) == set()


async def test_delete_non_empty_directory(contents_api: ContentsClient):
    api = contents_api
    status(await api.mkdir(api.at("d")), 201)
    status(await api.mkdir(api.at("d", "e")), 201)
    status(await api.save_text(api.at("d", "e", "x.txt"), "x"), 201)
    status(await api.delete(api.at("d")), 204)
    for path in ("d", "d/e", "d/e/x.txt"):
        status(await api.get(api.at(path)), 404)


async def test_delete_missing_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.delete(api.at("missing.txt")), 404)
    status(await api.delete(api.at("missing-dir")), 404)


async def test_delete_removes_checkpoints(contents_api: ContentsClient):
    """A file re-created under a deleted file's name starts without checkpoints."""
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.create_checkpoint(api.at("a.txt")), 201)
    status(await api.delete(api.at("a.txt")), 204)
    status(await api.save_text(api.at("a.txt"), "again"), 201)
    assert status(await api.list_checkpoints(api.at("a.txt")), 200).json() == []


async def test_save_notebook_marks_trust_per_cell(contents_api: ContentsClient):
    """Untrusted outputs come back ``trusted: false``; after POST …/trust, ``true``."""
    api = contents_api
    path = api.at("t.ipynb")
    output = nbformat.v4.new_output("display_data", data={"text/html": "<b>x</b>"})
    status(
        await api.save_notebook(path, new_notebook(cells=[new_code_cell("1", outputs=[output])])),
        201,
    )
    assert (await api.model(path))["content"]["cells"][0]["metadata"]["trusted"] is False
    status(await api.trust(path), 201)
    assert (await api.model(path))["content"]["cells"][0]["metadata"]["trusted"] is True
    status(await api.trust(api.at("missing.ipynb")), 404)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="a-string"),
        pytest.param({"foo": 1}, id="not-nbformat"),
        pytest.param([], id="a-list"),
    ],
)
async def test_save_invalid_notebook_keeps_old_version(contents_api: ContentsClient, content):
    """Differs by design: gilhub answers 400; the file manager fails with a 500.

    Both keep the stored notebook as it was.
    """
    api = contents_api
    path = api.at("n.ipynb")
    good = new_notebook(cells=[new_markdown_cell("kept")])
    status(await api.save_notebook(path, good), 201)
    expected = api.per_kind(file=500, postgres=400)
    status(
        await api.save(path, {"type": "notebook", "format": "json", "content": content}), expected
    )
    assert (await api.model(path))["content"]["cells"][0]["source"] == "kept"


async def test_save_notebook_failing_schema_validation(contents_api: ContentsClient):
    """Differs by design: a notebook that parses but breaks the nbformat schema is
    refused by gilhub (400, old version kept); the file manager stores it and adds a
    validation ``message`` to the answer."""
    api = contents_api
    path = api.at("n.ipynb")
    status(await api.save_notebook(path, new_notebook(cells=[new_markdown_cell("kept")])), 201)
    broken = new_notebook()
    broken["cells"] = [{"cell_type": "wrong", "metadata": {}}]
    response = await api.save(path, {"type": "notebook", "format": "json", "content": broken})
    if api.kind == "file":
        assert "validation failed" in status(response, 200).json()["message"].lower()
    else:
        status(response, 400)
        assert (await api.model(path))["content"]["cells"][0]["source"] == "kept"


async def test_save_into_missing_directory(contents_api: ContentsClient):
    """Differs in the code only: gilhub says 404 (no such directory), the file manager
    fails with a 500 from the operating system. Neither creates the directory."""
    api = contents_api
    response = await api.save_text(api.at("no", "such", "x.txt"), "x")
    status(response, api.per_kind(file=500, postgres=404))
    status(await api.get(api.at("no")), 404)


@pytest.mark.parametrize("container", ["directory", "root"])
async def test_directory_last_modified_follows_its_entries(
    contents_api: ContentsClient, container: str
):
    """A directory's ``last_modified`` moves when an entry is added, renamed or removed
    (POSIX directory mtime, which the file manager reports and JupyterLab shows).
    """
    api = contents_api
    directory = api.at("d") if container == "directory" else api.home
    if container == "directory":
        status(await api.mkdir(directory), 201)
    stamps = [timestamp((await api.model(directory, content=0))["last_modified"])]
    for change in (
        api.save_text(f"{directory}/x.txt", "x"),
        api.rename(f"{directory}/x.txt", f"{directory}/y.txt"),
        api.delete(f"{directory}/y.txt"),
    ):
        await asyncio.sleep(0.05)
        assert (await change).status_code < 300
        stamps.append(timestamp((await api.model(directory, content=0))["last_modified"]))
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps


async def test_move_into_another_directory(contents_api: ContentsClient):
    """JupyterLab's drag and drop: a PATCH whose new path is in another directory."""
    api = contents_api
    status(await api.mkdir(api.at("target")), 201)
    status(await api.mkdir(api.at("d")), 201)
    status(await api.save_text(api.at("d", "x.txt"), "x"), 201)
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.rename(api.at("a.txt"), api.at("target", "a.txt")), 200)
    status(await api.rename(api.at("d"), api.at("target", "d")), 200)
    assert listing_names(await api.model(api.home)) == {"target"}
    assert listing_names(await api.model(api.at("target"))) == {"a.txt", "d"}
    assert (await api.model(api.at("target", "d", "x.txt")))["content"] == "x"


async def test_move_into_missing_directory_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.rename(api.at("a.txt"), api.at("missing", "a.txt")), 404)
    assert listing_names(await api.model(api.home)) == {"a.txt"}


async def test_copy_to_a_full_path(contents_api: ContentsClient):
    """POST to a path that does not exist copies the file under that very name."""
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    created(await api.copy(api.at("a.txt"), api.at("b.txt")), path=api.at("b.txt"), type_="file")
    assert (await api.model(api.at("b.txt")))["content"] == "a"


async def test_save_a_directory_over_a_file_is_400(contents_api: ContentsClient):
    api = contents_api
    status(await api.save_text(api.at("a.txt"), "a"), 201)
    status(await api.mkdir(api.at("a.txt")), 400)
    assert (await api.model(api.at("a.txt")))["content"] == "a"


async def test_save_a_file_over_a_directory(contents_api: ContentsClient):
    """Differs in the code only: gilhub says 400 (it is a directory), the file manager
    fails with a 500 from the operating system. The directory stays."""
    api = contents_api
    status(await api.mkdir(api.at("d")), 201)
    status(await api.save_text(api.at("d", "keep.txt"), "keep"), 201)
    status(await api.save_text(api.at("d"), "x"), api.per_kind(file=500, postgres=400))
    assert listing_names(await api.model(api.at("d"))) == {"keep.txt"}


async def test_move_a_directory_into_itself(contents_api: ContentsClient):
    """Differs in the code only: gilhub says 400, the file manager fails with a 500."""
    api = contents_api
    status(await api.mkdir(api.at("d")), 201)
    status(
        await api.rename(api.at("d"), api.at("d", "inner")), api.per_kind(file=500, postgres=400)
    )
    assert listing_names(await api.model(api.at("d"))) == set()


async def test_root_cannot_be_renamed_or_deleted(contents_api: ContentsClient):
    """Deleting the root is 400 on both; renaming it is 400 for gilhub, 500 for the file
    manager (which tries and fails to move the root into itself)."""
    api = contents_api
    status(await api.rename("", api.at("root-moved")), api.per_kind(file=500, postgres=400))
    status(await api.delete(""), 400)
    assert api.home in listing_names(await api.model(""))
