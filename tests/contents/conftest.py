"""Fixtures of the contents conformance suite: real servers over both managers.

``contents_api`` is parametrized over ``"file"`` (jupyter_server's own
``AsyncLargeFileManager``) and ``"postgres"`` (gilhub's
``PostgresContentsManager``), so every test runs against both and asserts the
same observable behaviour. Servers start once per session and on demand
(a test of the file manager never waits for the PostgreSQL one); each test gets
a fresh directory of its own, created through the API, as its namespace.

Besides the ``default`` server each kind has *variants* that share its storage
(the same root directory, or the same database role): ``allow_hidden`` lets a
test create dot files that the default server must then hide, ``small_limit``
gives the PostgreSQL manager a 1 MiB size limit so the 413 path is cheap to
reach.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from gilhub.db import apply_migrations, create_engine
from gilhub.db.embedded import EmbeddedDatabase
from tests.contents.harness import (
    MANAGER_CLASSES,
    ContentsClient,
    JupyterServer,
    new_http_client,
    start_jupyter_server,
)

KINDS = ("file", "postgres")
SMALL_LIMIT = 1024 * 1024
VARIANT_OPTIONS: dict[str, dict[str, str]] = {
    "default": {},
    "allow_hidden": {"ContentsManager.allow_hidden": "True"},
    "small_limit": {"PostgresContentsManager.max_file_size": str(SMALL_LIMIT)},
}
CONFORMANCE_USER = "conformance"

_test_numbers = itertools.count(1)


async def _run_autocommit(admin_url: URL, statement: str) -> None:
    """CREATE/DROP DATABASE cannot run inside a transaction."""
    engine = create_engine(admin_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@dataclass
class PostgresStorage:
    """A migrated database of its own and the URL a user server gets for it."""

    admin_url: URL
    database: str
    user_url: str

    @classmethod
    async def create(cls, cluster_url: URL) -> PostgresStorage:
        from gilhub.contents.roles import (
            ensure_user_role,
            issue_role_password,
            user_database_url,
        )

        database = f"gilhub_conformance_{os.getpid()}"
        await _run_autocommit(cluster_url, f'CREATE DATABASE "{database}"')
        admin_url = cluster_url.set(database=database)
        engine = create_engine(admin_url, pool_size=1)
        try:
            await apply_migrations(engine)
            role = await ensure_user_role(engine, CONFORMANCE_USER)
            password = await issue_role_password(engine, role)
        finally:
            await engine.dispose()
        user_url = user_database_url(admin_url, role, password)
        return cls(admin_url, database, user_url.render_as_string(hide_password=False))

    async def drop(self, cluster_url: URL) -> None:
        statement = f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'
        await _run_autocommit(cluster_url, statement)


@dataclass
class ServerPool:
    """Servers started on first use and stopped together at the end of the session."""

    cluster: EmbeddedDatabase
    workdir: Path
    servers: dict[tuple[str, str], JupyterServer] = field(default_factory=dict)
    clients: dict[tuple[str, str], httpx.AsyncClient] = field(default_factory=dict)
    storage: PostgresStorage | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    failures: dict[tuple[str, str], Exception] = field(default_factory=dict)

    async def _once(self, key: tuple[str, str], start: Callable[[], Awaitable[None]]) -> None:
        """Run ``start`` once; a failure fails every later test that needs it too, at once.

        (A broken manager must fail loudly, but not cost a server start per test.)
        """
        if key in self.failures:
            raise RuntimeError(f"{key} failed earlier in this session") from self.failures[key]
        try:
            await start()
        except Exception as error:
            self.failures[key] = error
            raise

    async def _create_storage(self) -> None:
        self.storage = await PostgresStorage.create(self.cluster.url)

    async def _storage_env(self, kind: str) -> dict[str, str]:
        if kind != "postgres":
            return {}
        if self.storage is None:
            await self._once(("postgres", "storage"), self._create_storage)
        assert self.storage is not None
        return {"GILHUB_DB_URL": self.storage.user_url}

    async def _start_server(self, kind: str, variant: str) -> None:
        server = await start_jupyter_server(
            MANAGER_CLASSES[kind],
            self.workdir / f"{kind}-{variant}",
            root_dir=self.workdir / f"{kind}-root",
            env=await self._storage_env(kind),
            options=VARIANT_OPTIONS[variant],
        )
        self.servers[(kind, variant)] = server
        self.clients[(kind, variant)] = new_http_client(server)

    async def client(self, kind: str, variant: str = "default") -> ContentsClient:
        key = (kind, variant)
        async with self.lock:
            if key not in self.servers:
                await self._once(key, lambda: self._start_server(kind, variant))
        return ContentsClient(self.clients[key], self.servers[key], kind)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        for server in self.servers.values():
            await server.stop()
        if self.storage is not None:
            await self.storage.drop(self.cluster.url)


@pytest.fixture(scope="session")
async def server_pool(
    postgres: EmbeddedDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerPool]:
    pool = ServerPool(postgres, tmp_path_factory.mktemp("jupyter-servers"))
    try:
        yield pool
    finally:
        await pool.close()


def _home_name(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.originalname).strip("_")
    return f"t{next(_test_numbers)}-{name[:60]}"


@pytest.fixture(params=KINDS)
async def contents_api(request: pytest.FixtureRequest, server_pool: ServerPool) -> ContentsClient:
    """The default server of one kind, with a fresh ``home`` directory for this test."""
    api = await server_pool.client(request.param)
    api.home = _home_name(request)
    response = await api.mkdir(api.home)
    assert response.status_code == 201, response.text
    return api


@pytest.fixture
def variant_api(
    contents_api: ContentsClient, server_pool: ServerPool
) -> Callable[[str], Awaitable[ContentsClient]]:
    """Another server over the same storage as ``contents_api`` (same kind, same home)."""

    async def open_variant(variant: str) -> ContentsClient:
        api = await server_pool.client(contents_api.kind, variant)
        api.home = contents_api.home
        return api

    return open_variant
