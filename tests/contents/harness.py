"""Real ``jupyter_server`` processes and a small REST client for the contents API.

Shared by the conformance suite (``tests/contents``) and the storage benchmark
(``bench/contents_bench.py``): both drive the same two contents managers
through the same HTTP API, so both start servers the same way.

A server is a child process started and ended the way gilhub's spawner does it
(:mod:`gilhub.spawner.process`: asyncio on POSIX, ``Popen`` on Windows, whose
selector event loop, needed by psycopg, cannot run asyncio subprocesses).
Its token travels in the environment (``JUPYTER_TOKEN``), never on the command
line; so does the database URL of the PostgreSQL manager (``GILHUB_DB_URL``).
``JUPYTER_NO_CONFIG`` keeps the developer's own Jupyter config and the
installed server extensions (JupyterLab, LSP, …) out of the picture: the
servers start in about a second and serve only the REST API under test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.contents.roles import ensure_user_role, issue_role_password, user_database_url
from gilhub.spawner.process import ChildProcess, find_process, start_process, terminate_tree

FILE_MANAGER = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
POSTGRES_MANAGER = "gilhub.contents.PostgresContentsManager"
MANAGER_CLASSES = {"file": FILE_MANAGER, "postgres": POSTGRES_MANAGER}

CHUNK_SIZE = 1024 * 1024  # what JupyterLab sends per chunk for files over 1 MiB
STARTUP_TIMEOUT = 60.0
PORT_ATTEMPTS = 3


def free_port() -> int:
    """A port nobody listens on right now (the server is told to fail if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class JupyterServer:
    """One running ``jupyter_server`` child process."""

    process: ChildProcess
    url: str
    token: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def wait_until_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Poll ``/api/status`` until it answers; fail with the log if the process dies."""
        headers = {"Authorization": f"token {self.token}"}
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"jupyter_server exited with {self.process.returncode} during startup:\n"
                        + self.log_tail()
                    )
                try:
                    response = await http.get(f"{self.url}api/status", headers=headers)
                    if response.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"jupyter_server did not answer within {timeout} s:\n" + self.log_tail()
                    )
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Terminate the server and anything it started (kernels, terminals)."""
        process = find_process(self.process.pid, self.process.create_time)
        if process is not None:
            await terminate_tree(process, child=self.process)


async def start_jupyter_server(
    manager_class: str,
    workdir: Path,
    *,
    root_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> JupyterServer:
    """Start ``python -m jupyter_server`` with ``manager_class`` and wait until it answers.

    ``workdir`` holds the server's log and its Jupyter data/runtime directories;
    ``root_dir`` (default ``workdir/root``) is where the file manager keeps files.
    ``options`` are extra ``Class.trait`` settings for the command line (no secrets).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    root_dir = root_dir or workdir / "root"
    root_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    settings = {
        "ServerApp.ip": "127.0.0.1",
        "ServerApp.port_retries": "0",
        "ServerApp.open_browser": "False",
        "ServerApp.allow_root": "True",
        "ServerApp.root_dir": str(root_dir),
        "ServerApp.contents_manager_class": manager_class,
        # Delete really deletes (no desktop trash in a test), directories included,
        # which is what JupyterLab users get on Linux and what gilhub does.
        "FileContentsManager.delete_to_trash": "False",
        "FileContentsManager.always_delete_dir": "True",
        **(options or {}),
    }
    argv = [f"--{name}={value}" for name, value in settings.items()]
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GILHUB_", "JUPYTER"))},
        "JUPYTER_NO_CONFIG": "1",
        "JUPYTER_TOKEN": token,
        "JUPYTER_DATA_DIR": str(workdir / "data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        **(env or {}),
    }
    attempt = 1
    while True:
        port = free_port()
        log_path = workdir / f"server-{attempt}.log"
        process = await start_process(
            [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}", *argv],
            env=child_env,
            cwd=workdir,
            log_path=log_path,
        )
        server = JupyterServer(process, f"http://127.0.0.1:{port}/", token, log_path)
        try:
            await server.wait_until_ready()
            return server
        except BaseException:
            await server.stop()
            # Another process may have taken the port between our probe and the server's bind.
            if attempt == PORT_ATTEMPTS or "already in use" not in server.log_tail():
                raise
        attempt += 1


async def user_url_for(engine: AsyncEngine, database_url: URL, name: str) -> str:
    """The database URL a server of user ``name`` gets (its own role, a fresh password)."""
    role = await ensure_user_role(engine, name)
    password = await issue_role_password(engine, role)
    return user_database_url(database_url, role, password).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def user_server_api(
    engine: AsyncEngine, database_url: URL, user: str, workdir: Path, options: Mapping[str, str]
) -> AsyncIterator[ContentsClient]:
    """A real jupyter_server with the PostgreSQL manager for ``user``, and its API client."""
    server = await start_jupyter_server(
        POSTGRES_MANAGER,
        workdir,
        env={"GILHUB_DB_URL": await user_url_for(engine, database_url, user)},
        options=options,
    )
    client = new_http_client(server)
    try:
        yield ContentsClient(client, server, "postgres")
    finally:
        await client.aclose()
        await server.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _quote_segment(segment: str) -> str:
    if segment in (".", ".."):
        return segment.replace(".", "%2E")
    return quote(segment, safe="")


def _model_body(content: Any, type_: str, format_: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "content": content}
    if format_ is not None:
        body["format"] = format_
    return body


@dataclass
class ContentsClient:
    """The contents REST API of one server, as JupyterLab calls it.

    Every method takes full API paths (``"dir/file.txt"``) and returns the
    ``httpx.Response``: status codes are what the tests compare.
    ``home`` is a directory private to the current test (see ``at``).
    """

    http: httpx.AsyncClient
    server: JupyterServer
    kind: str
    home: str = ""

    def per_kind(self, **by_kind: Any) -> Any:
        """The value for this server's kind, where the managers differ by design
        (each such test names the difference): ``api.per_kind(file=500, postgres=400)``."""
        return by_kind[self.kind]

    def at(self, *names: str) -> str:
        """A path inside this client's ``home`` directory."""
        return "/".join(part for part in (self.home, *names) if part)

    def url(self, path: str, *suffix: str) -> str:
        """The URL of ``path``, each segment percent-encoded.

        ``.`` and ``..`` segments are encoded too (``%2E%2E``): httpx would
        otherwise resolve them before sending, and the server must see them.
        """
        segments = [_quote_segment(part) for part in path.split("/")]
        tail = "".join(f"/{_quote_segment(part)}" for part in suffix)
        return f"{self.server.url}api/contents/{'/'.join(segments)}{tail}"

    async def request(
        self, method: str, path: str, *suffix: str, body: Any = None, **params: Any
    ) -> httpx.Response:
        query = {name: str(value) for name, value in params.items() if value is not None}
        return await self.http.request(
            method, self.url(path, *suffix), json=body, params=query or None
        )

    async def get(self, path: str = "", **params: Any) -> httpx.Response:
        """GET with query parameters such as ``content=0``, ``type``, ``format``, ``hash=1``."""
        return await self.request("GET", path, **params)

    async def model(self, path: str = "", **params: Any) -> dict[str, Any]:
        """GET that must succeed; returns the JSON model."""
        response = await self.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    async def save(self, path: str, model: dict[str, Any]) -> httpx.Response:
        return await self.request("PUT", path, body=model)

    async def save_text(self, path: str, text: str) -> httpx.Response:
        return await self.save(path, _model_body(text, "file", "text"))

    async def save_bytes(self, path: str, data: bytes) -> httpx.Response:
        return await self.save(path, _model_body(b64(data), "file", "base64"))

    async def save_notebook(self, path: str, notebook: Any) -> httpx.Response:
        return await self.save(path, _model_body(notebook, "notebook", "json"))

    async def mkdir(self, path: str) -> httpx.Response:
        return await self.save(path, {"type": "directory"})

    async def new_untitled(self, directory: str, **body: Any) -> httpx.Response:
        return await self.request("POST", directory, body=body or None)

    async def copy(self, from_path: str, to_directory: str) -> httpx.Response:
        return await self.request("POST", to_directory, body={"copy_from": from_path})

    async def rename(self, old_path: str, new_path: str) -> httpx.Response:
        return await self.request("PATCH", old_path, body={"path": new_path})

    async def delete(self, path: str) -> httpx.Response:
        return await self.request("DELETE", path)

    async def trust(self, path: str) -> httpx.Response:
        return await self.request("POST", path, "trust")

    async def list_checkpoints(self, path: str) -> httpx.Response:
        return await self.request("GET", path, "checkpoints")

    async def create_checkpoint(self, path: str) -> httpx.Response:
        return await self.request("POST", path, "checkpoints")

    async def restore_checkpoint(self, path: str, checkpoint_id: str) -> httpx.Response:
        return await self.request("POST", path, "checkpoints", checkpoint_id)

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> httpx.Response:
        return await self.request("DELETE", path, "checkpoints", checkpoint_id)

    async def send_chunk(self, path: str, data: bytes, number: int) -> httpx.Response:
        """One chunk as JupyterLab sends it: base64 file content with its ``chunk`` number."""
        body = _model_body(b64(data), "file", "base64")
        body["chunk"] = number
        return await self.save(path, body)

    async def upload_chunked(
        self, path: str, data: bytes, chunk_size: int = CHUNK_SIZE
    ) -> list[httpx.Response]:
        """Upload like JupyterLab: chunks numbered 1 … n-1, the last one numbered -1.

        Stops at the first failed chunk (as JupyterLab does) and returns every response.
        """
        pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
        responses = []
        for index, piece in enumerate(pieces, start=1):
            number = -1 if index == len(pieces) else index
            response = await self.send_chunk(path, piece, number)
            responses.append(response)
            if response.status_code >= 400:
                break
        return responses


def new_http_client(server: JupyterServer, timeout: float = 120.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"Authorization": f"token {server.token}"},
        timeout=timeout,
    )
