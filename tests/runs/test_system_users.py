"""With ``isolation = "system-users"`` (no sandbox) a run executes as its user's account.

A module of its own: its hub must be the only one on its database (hubs share the queue).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from traitlets.config import Config

from gilhub.spawner.local import database_socket_dir
from tests.hub.conftest import RunningHub, running_hub
from tests.runs.helpers import person
from tests.runs.test_identity import assert_ran_as, probed


@pytest.fixture(scope="module")
async def system_users_hub(database_url, tmp_path_factory) -> AsyncIterator[RunningHub]:
    """A root hub with ``isolation = "system-users"`` (no sandbox): the accounts reach the
    test cluster's socket directly, so its directories are opened (o+x) meanwhile."""
    assert os.geteuid() == 0, "the tests run as root (as CI does)"
    config = Config()
    config.LocalProcessSpawner.isolation = "system-users"
    socket_dir = database_socket_dir(database_url)
    assert socket_dir is not None, "the test cluster listens on a Unix socket"
    closed = [p for p in (socket_dir, *socket_dir.parents) if p.stat().st_mode & 0o001 == 0]
    for directory in closed:
        directory.chmod(directory.stat().st_mode | 0o001)
    try:
        async with running_hub(database_url, tmp_path_factory.mktemp("users-hub"), config) as hub:
            yield hub
    finally:
        for directory in closed:
            directory.chmod(directory.stat().st_mode & ~0o001)


async def test_with_system_users_a_run_executes_as_the_users_account_not_the_hubs(
    system_users_hub,
):
    carol = await person(system_users_hub, "carol")
    assert_ran_as(await probed(carol), "carol")
