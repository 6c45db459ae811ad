"""Reading: GET of notebooks, files and directories, with every query parameter.

Each test runs against jupyter_server's file manager and gilhub's PostgreSQL
manager (see ``conftest.py``) and asserts the same answer from both.
"""

from __future__ import annotations

import base64

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.contents.assertions import (
    check_model,
    decoded,
    listing_names,
    sha256,
    status,
)
from tests.contents.harness import ContentsClient

BINARY = b"\x00\x01binary \xff\xfe data"
TEXT = "plain text, ünïcødé ✓\nsecond line\n"


def sample_notebook() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[new_markdown_cell("# Title ³"), new_code_cell("print('héllo')")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


@pytest.fixture
async def populated(contents_api: ContentsClient) -> ContentsClient:
    """``home`` with a notebook, a text file, a binary file and a sub-directory."""
    api = contents_api
    status(await api.save_notebook(api.at("nb.ipynb"), sample_notebook()), 201)
    status(await api.save_text(api.at("notes.txt"), TEXT), 201)
    status(await api.save_bytes(api.at("data.bin"), BINARY), 201)
    status(await api.mkdir(api.at("sub")), 201)
    status(await api.save_text(api.at("sub", "inner.txt"), "inner"), 201)
    return api


async def test_get_notebook(populated: ContentsClient):
    api = populated
    model = check_model(
        await api.model(api.at("nb.ipynb")), path=api.at("nb.ipynb"), type_="notebook", content=True
    )
    assert model["format"] == "json"
    assert model["mimetype"] is None
    notebook = nbformat.from_dict(model["content"])
    nbformat.validate(notebook)
    assert [cell.source for cell in notebook.cells] == ["# Title ³", "print('héllo')"]
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize(
    "name,format_,mimetype,data",
    [
        ("notes.txt", "text", "text/plain", TEXT.encode("utf-8")),
        ("data.bin", "base64", "application/octet-stream", BINARY),
    ],
)
async def test_get_file_in_its_natural_format(
    populated: ContentsClient, name: str, format_: str, mimetype: str, data: bytes
):
    """UTF-8 files come back as text, anything else as base64."""
    api = populated
    model = check_model(
        await api.model(api.at(name)), path=api.at(name), type_="file", content=True
    )
    assert (model["format"], model["mimetype"]) == (format_, mimetype)
    assert decoded(model) == data
    assert model["size"] == len(data)


async def test_get_text_file_forced_to_base64(populated: ContentsClient):
    api = populated
    model = await api.model(api.at("notes.txt"), format="base64")
    assert model["format"] == "base64"
    assert base64.b64decode(model["content"]) == TEXT.encode("utf-8")


async def test_get_binary_file_forced_to_text_is_400(populated: ContentsClient):
    api = populated
    status(await api.get(api.at("data.bin"), format="text"), 400)


async def test_get_notebook_as_file(populated: ContentsClient):
    """``type=file`` on a notebook returns its JSON text, unparsed."""
    api = populated
    model = await api.model(api.at("nb.ipynb"), type="file")
    assert model["type"] == "file"
    assert model["format"] == "text"
    notebook = nbformat.reads(model["content"], as_version=4)
    assert notebook.cells[0].source == "# Title ³"


async def test_unknown_type_falls_back_to_file(populated: ContentsClient):
    api = populated
    model = await api.model(api.at("notes.txt"), type="spreadsheet")
    assert (model["type"], model["content"]) == ("file", TEXT)


async def test_get_notebook_as_base64_file(populated: ContentsClient):
    api = populated
    model = await api.model(api.at("nb.ipynb"), type="file", format="base64")
    assert (model["type"], model["format"]) == ("file", "base64")
    assert nbformat.reads(decoded(model).decode("utf-8"), as_version=4).cells[1].source == (
        "print('héllo')"
    )


async def test_notebook_format_parameter_without_type_is_ignored(populated: ContentsClient):
    """A ``.ipynb`` path is a notebook unless ``type=file`` says otherwise."""
    api = populated
    model = await api.model(api.at("nb.ipynb"), format="text")
    assert (model["type"], model["format"]) == ("notebook", "json")


async def test_get_text_file_as_notebook_is_400(populated: ContentsClient):
    api = populated
    status(await api.get(api.at("notes.txt"), type="notebook"), 400)


async def test_get_directory_with_wrong_type_is_400(populated: ContentsClient):
    api = populated
    status(await api.get(api.at("sub"), type="file"), 400)
    status(await api.get(api.at("notes.txt"), type="directory"), 400)


@pytest.mark.parametrize("name", ["nb.ipynb", "notes.txt", "data.bin", "sub"])
async def test_get_without_content(populated: ContentsClient, name: str):
    api = populated
    type_ = {"nb.ipynb": "notebook", "sub": "directory"}.get(name, "file")
    model = await api.model(api.at(name), content=0)
    check_model(model, path=api.at(name), type_=type_)


@pytest.mark.parametrize("name", ["nb.ipynb", "notes.txt", "data.bin"])
async def test_get_with_hash(populated: ContentsClient, name: str):
    """``hash=1`` adds the sha256 of the stored bytes, with or without content."""
    api = populated
    type_ = "notebook" if name.endswith(".ipynb") else "file"
    raw = decoded(await api.model(api.at(name), type="file", format="base64"))
    for content in (0, 1):
        model = await api.model(api.at(name), hash=1, content=content)
        check_model(model, path=api.at(name), type_=type_, content=bool(content), hashed=True)
        assert model["hash"] == sha256(raw)
        assert model["size"] == len(raw)


async def test_get_without_hash_has_none(populated: ContentsClient):
    api = populated
    model = await api.model(api.at("notes.txt"), hash=0)
    assert model["hash"] is None and model["hash_algorithm"] is None


async def test_list_directory(populated: ContentsClient):
    api = populated
    model = check_model(await api.model(api.home), path=api.home, type_="directory", content=True)
    assert model["format"] == "json"
    assert listing_names(model) == {"nb.ipynb", "notes.txt", "data.bin", "sub"}
    types = {"nb.ipynb": "notebook", "notes.txt": "file", "data.bin": "file", "sub": "directory"}
    for entry in model["content"]:
        check_model(entry, path=api.at(entry["name"]), type_=types[entry["name"]])


async def test_list_root(populated: ContentsClient):
    api = populated
    model = check_model(await api.model(""), path="", type_="directory", content=True)
    assert api.home in listing_names(model)


@pytest.mark.parametrize("name", ["missing.txt", "missing.ipynb", "missing-dir/x.txt"])
async def test_get_missing_is_404(contents_api: ContentsClient, name: str):
    status(await contents_api.get(contents_api.at(name)), 404)


@pytest.mark.parametrize("params", [{"format": "xml"}, {"content": "2"}, {"hash": "yes"}], ids=str)
async def test_invalid_query_parameters_are_400(populated: ContentsClient, params: dict):
    api = populated
    status(await api.get(api.at("notes.txt"), **params), 400)


async def test_unicode_names_and_content(contents_api: ContentsClient):
    api = contents_api
    directory = api.at("å b ∂ir")
    status(await api.mkdir(directory), 201)
    path = f"{directory}/ç d ☃.ipynb"
    notebook = new_notebook(cells=[new_markdown_cell("Grüße, 世界, 🚀")])
    status(await api.save_notebook(path, notebook), 201)
    model = check_model(await api.model(path), path=path, type_="notebook", content=True)
    assert model["content"]["cells"][0]["source"] == "Grüße, 世界, 🚀"
    assert listing_names(await api.model(directory)) == {"ç d ☃.ipynb"}


@pytest.mark.parametrize("name,data", [("data.bin", BINARY), ("notes.txt", TEXT.encode())])
async def test_files_download(populated: ContentsClient, name: str, data: bytes):
    """``/files/…`` serves the stored bytes (JupyterLab's Download, images in notebooks)."""
    api = populated
    response = status(await api.http.get(f"{api.server.url}files/{api.at(name)}"), 200)
    assert response.content == data


async def test_files_download_of_missing_is_404(contents_api: ContentsClient):
    api = contents_api
    status(await api.http.get(f"{api.server.url}files/{api.at('missing.bin')}"), 404)
