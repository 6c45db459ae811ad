"""A real, running gilhub hub for the hub tests (and anyone who wants one).

Fixture ``hub`` (one per test module): gilhub's own :class:`~gilhub.app.GilHub`
started in-process, on the test session's event loop, listening on a free
loopback port, on the module's fresh database (``database_url`` from
``tests/conftest.py``). Nothing is mocked: real PostgreSQL, real HTTP, and a
real :class:`~gilhub.servers.ServerManager` whose user servers are real
``jupyter_server`` children (all stopped at teardown).

``hub`` is a :class:`RunningHub`:

- ``hub.url``: base URL, e.g. ``http://127.0.0.1:PORT`` (the hub serves ``/hub/…``)
- ``hub.app``: the ``GilHub`` instance (``hub.app.db``, ``hub.app.servers`` …)
- ``hub.admin_name`` / ``hub.admin_password``: an administrator account
- ``await hub.add_user(name, password=..., admin=False)``
- ``await hub.login(name, password)``: an ``httpx.AsyncClient`` logged in through
  the login form (session cookie + ``_xsrf`` cookie); ``hub.xsrf_headers(client)``
  gives the ``X-XSRFToken`` header for cookie-authenticated API calls
- ``await hub.token_for(name)``: a fresh API token (``Authorization: token …``)
- ``hub.client()``: an anonymous client

Fixture ``workdir``: a directory whose ``gilhub_config.py`` points ``gilhub``
commands (run there) at the module's database.

For a hub with its own configuration use ``running_hub(database_url, data_dir, config)``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from traitlets.config import Config

from gilhub.app import GilHub
from gilhub.auth.tokens import create_token
from gilhub.users import User, get_user_by_name
from tests.hub.servers_harness import start_hub as start_test_hub
from tests.hub.servers_harness import stop_hub

ADMIN_NAME = "boss"
ADMIN_PASSWORD = "boss-password-1"
USER_PASSWORD = "a-good-password"
_names = itertools.count(1)


@dataclass
class RunningHub:
    app: GilHub
    url: str
    admin_name: str = ADMIN_NAME
    admin_password: str = ADMIN_PASSWORD
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **kwargs) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, timeout=60, **kwargs)
        self.clients.append(client)
        return client

    @staticmethod
    def unique_name(prefix: str = "user") -> str:
        return f"{prefix}{next(_names)}"

    async def add_user(
        self, name: str | None = None, password: str = USER_PASSWORD, admin: bool = False
    ) -> User:
        user, _ = await self.app.accounts.create(name or self.unique_name(), password, admin=admin)
        return user

    async def token_for(self, name: str) -> str:
        async with self.app.db.begin() as conn:
            user = await get_user_by_name(conn, name)
            assert user is not None
            return (await create_token(conn, user.id, note="test")).token

    @staticmethod
    def xsrf_token(client: httpx.AsyncClient) -> str:
        return client.cookies["_xsrf"]

    def xsrf_headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {"X-XSRFToken": self.xsrf_token(client)}

    async def login(self, name: str, password: str, **client_kwargs) -> httpx.AsyncClient:
        """A client logged in through the real login form."""
        client = self.client(**client_kwargs)
        await client.get("/hub/login")
        response = await client.post(
            "/hub/login",
            data={"username": name, "password": password, "_xsrf": self.xsrf_token(client)},
        )
        assert response.status_code == 303, response.text
        return client

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients.clear()


async def post_form(client: httpx.AsyncClient, url: str, data: dict) -> httpx.Response:
    """Post a hub form as a browser does: the answer is a 303 (POST/redirect/GET) to a
    page, which is fetched and returned."""
    posted = await client.post(url, data=data)
    assert posted.status_code == 303, posted.text
    return await client.get(posted.headers["Location"])


@contextlib.asynccontextmanager
async def running_hub(
    database_url: URL, data_dir: Path, config: Config | None = None
) -> AsyncIterator[RunningHub]:
    """A started hub with the admin account; everything it started is stopped on exit.

    For a fixture with a configuration of its own, e.g.
    ``async with running_hub(database_url, tmp, config) as hub: yield hub``.
    """
    app = await start_test_hub(database_url, data_dir, config)
    running = RunningHub(app=app, url=f"http://127.0.0.1:{app.bound_port}")
    try:
        async with app.db.connect() as conn:
            admin_exists = await get_user_by_name(conn, ADMIN_NAME) is not None
        if not admin_exists:  # a second hub on the same database shares the first one's
            await running.add_user(ADMIN_NAME, ADMIN_PASSWORD, admin=True)
        yield running
    finally:
        await running.close_clients()
        await stop_hub(app)


def write_config(directory: Path, url: URL) -> Path:
    """The database URL goes in a config file: secrets never on a command line."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gilhub_config.py"
    rendered = url.render_as_string(hide_password=False)
    path.write_text(f"c.GilHub.db_url = {rendered!r}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workdir(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose gilhub_config.py points at the module's database."""
    directory = tmp_path_factory.mktemp("cli")
    write_config(directory, database_url)
    return directory


@pytest.fixture(scope="module")
async def hub(
    database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    async with running_hub(database_url, tmp_path_factory.mktemp("hub-data")) as running:
        yield running
