"""Chunked uploads as JupyterLab sends them, and the size limit.

JupyterLab uploads a file over 1 MiB as base64 chunks numbered 1, 2, …, n-1
and a last chunk numbered -1, each a PUT of a ``type: file`` model.
"""

from __future__ import annotations

import os

import pytest
from nbformat.v4 import new_notebook

from tests.contents.assertions import check_model, decoded, sha256, status
from tests.contents.conftest import SMALL_LIMIT
from tests.contents.harness import CHUNK_SIZE, ContentsClient


def assert_all_succeeded(responses) -> None:
    assert [r.status_code for r in responses if r.status_code >= 300] == [], responses[-1].text


async def test_chunked_upload_of_several_mib(contents_api: ContentsClient):
    api = contents_api
    path = api.at("upload.bin")
    data = os.urandom(5 * CHUNK_SIZE + 12345)
    responses = await api.upload_chunked(path, data)
    assert len(responses) == 6
    assert_all_succeeded(responses)
    final = check_model(responses[-1].json(), path=path, type_="file")
    assert final["size"] == len(data)
    model = await api.model(path, hash=1)
    assert decoded(model) == data
    assert model["size"] == len(data)
    assert model["hash"] == sha256(data)


async def test_chunked_upload_replaces_existing_file(contents_api: ContentsClient):
    api = contents_api
    path = api.at("replace.bin")
    status(await api.save_bytes(path, b"old content that is longer than nothing"), 201)
    data = os.urandom(2 * CHUNK_SIZE + 1)
    assert_all_succeeded(await api.upload_chunked(path, data))
    assert decoded(await api.model(path)) == data


async def test_chunked_upload_of_text(contents_api: ContentsClient):
    """A UTF-8 file uploaded in chunks is served back as text (format auto-detected)."""
    api = contents_api
    path = api.at("big.txt")
    text = "ünïcødé line ✓\n" * 150_000  # about 2.7 MB
    assert_all_succeeded(await api.upload_chunked(path, text.encode("utf-8")))
    model = await api.model(path)
    assert model["format"] == "text"
    assert model["content"] == text


async def test_chunked_upload_of_a_notebook_type_is_400(contents_api: ContentsClient):
    api = contents_api
    body = {"type": "notebook", "format": "json", "content": new_notebook(), "chunk": 1}
    status(await api.save(api.at("n.ipynb"), body), 400)
    status(await api.get(api.at("n.ipynb")), 404)


async def test_chunk_out_of_order(contents_api: ContentsClient):
    """Differs by design.

    gilhub refuses a chunk that does not follow the previous one (400) and
    keeps the stored file as it was: the upload is assembled beside it and
    replaces it only when the last chunk arrives. The file manager writes
    chunk 1 over the file at once and appends whatever comes next, so the old
    content is gone and the gap goes unnoticed.
    """
    api = contents_api
    path = api.at("order.bin")
    old = b"the old version"
    status(await api.save_bytes(path, old), 201)
    first, third = b"A" * 1000, b"C" * 1000
    status(await api.send_chunk(path, first, 1), 200)
    third_response = await api.send_chunk(path, third, 3)
    if api.kind == "file":
        status(third_response, 200)
        assert decoded(await api.model(path)) == first + third
    else:
        status(third_response, 400)
        assert decoded(await api.model(path)) == old


async def test_last_chunk_without_first_is_refused_by_gilhub(contents_api: ContentsClient):
    """Differs by design: a lone ``chunk: -1`` is an incomplete upload for gilhub (400,
    nothing stored); the file manager simply appends it to whatever is there."""
    api = contents_api
    path = api.at("lonely.bin")
    response = await api.send_chunk(path, b"tail", -1)
    if api.kind == "file":
        status(response, 201)
        assert decoded(await api.model(path)) == b"tail"
    else:
        status(response, 400)
        status(await api.get(path), 404)


@pytest.mark.parametrize("how", ["single-put", "chunked"])
async def test_size_limit(contents_api: ContentsClient, variant_api, how: str):
    """Differs by design: gilhub answers 413 above ``max_file_size`` and keeps the old
    version whole; the file manager has no limit and stores the file."""
    api = contents_api
    path = api.at("limit.bin")
    old = b"small and whole"
    status(await api.save_bytes(path, old), 201)
    too_big = os.urandom(SMALL_LIMIT + CHUNK_SIZE // 2)
    limited = await variant_api("small_limit")
    if how == "single-put":
        codes = [(await limited.save_bytes(path, too_big)).status_code]
    else:
        codes = [r.status_code for r in await limited.upload_chunked(path, too_big)]
    if api.kind == "file":
        assert codes[-1] in (200, 201)
        assert decoded(await api.model(path)) == too_big
    else:
        assert codes[-1] == 413, codes
        assert decoded(await api.model(path)) == old


async def test_interleaved_chunked_uploads(contents_api: ContentsClient):
    """JupyterLab uploads several files at once: their chunks arrive interleaved."""
    api = contents_api
    files = {api.at(f"{name}.bin"): os.urandom(3 * CHUNK_SIZE + 7) for name in "ab"}
    for number in (1, 2, 3, -1):
        for path, data in files.items():
            start = (number - 1 if number > 0 else 3) * CHUNK_SIZE
            response = await api.send_chunk(path, data[start : start + CHUNK_SIZE], number)
            assert response.status_code in (200, 201), response.text
    for path, data in files.items():
        assert decoded(await api.model(path)) == data


async def test_upload_again_after_a_refused_chunk(contents_api: ContentsClient):
    """After an upload went wrong, starting over from chunk 1 gives the new file."""
    api = contents_api
    path = api.at("retry.bin")
    status(await api.send_chunk(path, b"A" * 100, 1), 201)
    await api.send_chunk(path, b"C" * 100, 3)  # refused by gilhub, appended by the file manager
    data = os.urandom(2 * CHUNK_SIZE + 3)
    assert_all_succeeded(await api.upload_chunked(path, data))
    assert decoded(await api.model(path)) == data
