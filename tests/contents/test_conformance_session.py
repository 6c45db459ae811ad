"""Opening a notebook as JupyterLab does: a session with a kernel, whatever the storage.

The kernel's working directory comes from the contents manager
(``get_kernel_path``); with notebooks in PostgreSQL there is no such directory
on disk, and the kernel must still start (in the server's root directory).
"""

from __future__ import annotations

from nbformat.v4 import new_notebook

from tests.contents.assertions import status
from tests.contents.harness import ContentsClient


async def test_open_notebook_in_a_subdirectory_starts_a_kernel(contents_api: ContentsClient):
    api = contents_api
    status(await api.mkdir(api.at("sub")), 201)
    path = api.at("sub", "analysis.ipynb")
    status(await api.save_notebook(path, new_notebook()), 201)
    sessions = f"{api.server.url}api/sessions"
    body = {"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    session = status(await api.http.post(sessions, json=body), 201).json()
    try:
        assert session["path"] == path
        assert session["kernel"]["name"] == "python3"
        listed = status(await api.http.get(sessions), 200).json()
        assert session["id"] in {s["id"] for s in listed}
    finally:
        status(await api.http.delete(f"{sessions}/{session['id']}"), 204)
