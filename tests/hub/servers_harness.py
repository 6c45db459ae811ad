"""A real gilhub hub, in the test process, for the spawner and proxy tests.

The hub is gilhub's own :class:`~gilhub.app.GilHub` on a per-module database
(from ``tests/conftest.py``), listening on a free loopback port; its user
servers are real ``jupyter_server`` children. Helpers create users and give
back what a client needs: an API token and a signed session cookie; others
start, follow and stop a user's server over any hub's REST API.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from jupyter_client.session import Session, json_packer
from tornado.web import create_signed_value
from traitlets.config import Config

from gilhub.accounts import create_account
from gilhub.app import GilHub
from gilhub.auth.sessions import create_session
from gilhub.auth.tokens import create_token
from gilhub.handlers.base import SESSION_COOKIE
from gilhub.spawner.sandbox import open_to_others
from gilhub.users import User


@dataclass
class Person:
    user: User
    token: str
    cookie: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def token_header(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def cookie_header(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}


#: System accounts that hubs of this test session create (a hub run as root gives each user
#: one): a prefix of the session's own, so that parallel sessions never share an account;
#: tests/conftest.py deletes them at the end.
TEST_ACCOUNT_PREFIX = f"gt{os.getpid()}-"


@functools.cache
def server_python() -> str:
    """A Python with this environment's packages that every system account can run.

    A hub run as root starts each user's server as an account of its own, which must
    be able to run the server's Python. Where this environment's interpreter is closed
    to other accounts (a pyenv build under root's 0700 home, as on the development
    machine), this is a virtual environment over the system's Python of the same
    version that loads this environment's packages; elsewhere (CI: Debian's Python)
    it is ``sys.executable`` itself.
    """
    if open_to_others(Path(sys.executable).resolve()):
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = Path(f"/usr/bin/python{version}")
    assert open_to_others(system_python), f"no Python {version} that other accounts can run"
    # Not under /tmp: every sandbox has a /tmp of its own.
    shim = Path(tempfile.mkdtemp(prefix="gilhub-test-python-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, shim, ignore_errors=True)
    subprocess.run([system_python, "-m", "venv", "--without-pip", shim], check=True)
    site_packages = shim / "lib" / f"python{version}" / "site-packages"
    ours = sysconfig.get_paths()["purelib"]
    (site_packages / "gilhub-tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    for jupyter_place in ("share", "etc"):  # Jupyter's data (lab assets) and extensions
        (shim / jupyter_place).symlink_to(Path(sys.prefix) / jupyter_place)
    for path in (shim, *shim.rglob("*")):
        path.chmod(path.stat().st_mode | 0o005)
    return str(shim / "bin" / "python")


async def start_hub(database_url, data_dir: Path, config: Config | None = None) -> GilHub:
    config = Config(config or {})
    if "account_prefix" not in config.LocalProcessSpawner:
        config.LocalProcessSpawner.account_prefix = TEST_ACCOUNT_PREFIX
    if "cmd" not in config.Spawner:
        config.Spawner.cmd = [server_python(), "-m", "jupyter_server"]
    if "worker_cmd" not in config.Runs:  # run workers run in the users' accounts too
        config.Runs.worker_cmd = [server_python(), "-m", "gilhub.runs.worker"]
    hub = GilHub(config=config)
    hub.db_url = database_url
    hub.data_dir = data_dir
    hub.ip, hub.port = "127.0.0.1", 0
    await hub.start_hub()
    return hub


async def stop_hub(hub: GilHub) -> None:
    """Stop the hub and every user server it started."""
    if hub.servers is not None:
        hub.servers.cleanup_servers = True
    await hub.stop_hub()


async def add_person(hub: GilHub, name: str, *, admin: bool = False) -> Person:
    async with hub.db.begin() as conn:
        user = await create_account(conn, name, admin=admin)
        token = (await create_token(conn, user.id, note="test")).token
        session_id = await create_session(conn, user.id, timedelta(hours=1))
    cookie = create_signed_value(hub.secret, SESSION_COOKIE, session_id).decode()
    return Person(user, token, cookie)


async def wait_for_state(hub: GilHub, name: str, state: str, timeout: float = 90) -> None:
    """Wait (polling, no time asserted) until NAME's server reaches ``state``."""
    async with asyncio.timeout(timeout):
        while hub.servers.status(name).state != state:
            await asyncio.sleep(0.05)


async def start_and_wait(hub: GilHub, user: User) -> list[dict]:
    """Start a server and collect its progress events until ready or failed."""
    await hub.servers.start(user)
    events = []
    async with asyncio.timeout(120):
        async for event in hub.servers.progress(user.name):
            events.append(event)
    return events


@contextlib.contextmanager
def using_spawner(hub: GilHub, spawner_class: type):
    """Start servers with ``spawner_class`` inside the block (as ``c.GilHub.spawner_class``)."""
    previous = hub.spawner_class
    hub.spawner_class = spawner_class
    try:
        yield
    finally:
        hub.spawner_class = previous


# -- a hub's users' servers, over its REST API


async def progress_events(client: httpx.AsyncClient, name: str) -> list[dict]:
    """Follow the server's progress stream (``text/event-stream``) until ready or failed."""
    events = []
    async with asyncio.timeout(120):
        async with client.stream("GET", f"/hub/api/users/{name}/server/progress") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line.removeprefix("data:")))
                    if events[-1]["ready"] or events[-1]["failed"]:
                        break
    return events


async def start_server(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post(f"/hub/api/users/{name}/server")
    assert response.status_code in (201, 202), response.text
    events = await progress_events(client, name)
    assert events[-1]["ready"], events
    assert events[-1]["url"] == f"/user/{name}/"


async def server_model(client: httpx.AsyncClient, name: str) -> dict | None:
    response = await client.get(f"/hub/api/users/{name}")
    response.raise_for_status()
    return response.json()["servers"].get("")


async def wait_until_gone(client: httpx.AsyncClient, name: str) -> None:
    """Poll the user's model until it lists no server (no duration is asserted)."""
    async with asyncio.timeout(90):
        while await server_model(client, name) is not None:
            await asyncio.sleep(0.2)


def hub_url(hub: GilHub, path: str = "", scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{hub.bound_port}/{path.lstrip('/')}"


def execute_request(code: str, session: str) -> dict:
    """A Jupyter ``execute_request`` in the WebSocket JSON protocol."""
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    message = Session(session=session, username="test").msg("execute_request", content=content)
    return {**json.loads(json_packer(message)), "channel": "shell", "buffers": []}


async def execute(websocket, code: str, session: str) -> tuple[str | None, float]:
    """Run ``code`` on the kernel behind ``websocket``: (its result, the round trip in s)."""
    request = execute_request(code, session)
    started = time.perf_counter()
    await websocket.send(json.dumps(request))
    result, round_trip, idle = None, None, False
    async with asyncio.timeout(60):
        while round_trip is None or not idle:
            message = json.loads(await websocket.recv())
            if message.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                continue
            kind = message["msg_type"]
            if kind == "execute_result":
                result = message["content"]["data"]["text/plain"]
            elif kind == "execute_reply":
                round_trip = time.perf_counter() - started
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
    return result, round_trip
