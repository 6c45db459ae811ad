"""One real single-node Slurm for the whole session, and a hub that spawns through it.

Fixture ``slurm`` (session): a :class:`~tests.slurm.cluster.SlurmCluster` (munged,
slurmctld, slurmd); ``SLURM_CONF`` points Slurm's commands at it meanwhile. Without
root or Debian's Slurm packages it fails with the reason, never skips.

Fixture ``slurm_hub`` (module): a real hub whose spawner is
:class:`~gilhub.spawner.slurm.SlurmSpawner`, on an embedded PostgreSQL of its own that
listens on the loopback (the jobs' servers log in over TCP, as on a cluster's nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from traitlets.config import Config

from gilhub.app import GilHub
from gilhub.spawner.accounts import account_name, ensure_account
from gilhub.spawner.slurm import SlurmSpawner
from tests.hub.servers_harness import TEST_ACCOUNT_PREFIX, server_python, stop_hub
from tests.slurm.cluster import NODE_CPUS, SlurmCluster, start_cluster


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    cluster = start_cluster()  # SlurmUnavailable (with the logs) fails every test using it
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_hub_config() -> Config:
    config = Config()
    config.GilHub.spawner_class = SlurmSpawner
    config.GilHub.embedded_db_listen_address = "127.0.0.1"
    config.GilHub.embedded_db_port = free_port()
    config.Spawner.cmd = [server_python(), "-m", "gilhub.singleuser"]
    config.SlurmSpawner.account_prefix = TEST_ACCOUNT_PREFIX
    config.SlurmSpawner.time_limit = "30:00"
    config.SlurmSpawner.start_timeout = 120.0
    config.SlurmQueue.poll_interval = 0.5
    config.ServerManager.poll_interval = 0.5
    return config


async def start_slurm_hub(data_dir, config: Config | None = None) -> GilHub:
    hub = GilHub(config=config or slurm_hub_config())
    hub.data_dir = data_dir
    hub.ip, hub.port = "127.0.0.1", 0
    await hub.start_hub()
    return hub


@pytest.fixture(scope="module")
async def slurm_hub(slurm, tmp_path_factory) -> AsyncIterator[GilHub]:
    hub = await start_slurm_hub(tmp_path_factory.mktemp("slurm-hub"))
    try:
        yield hub
    finally:
        await stop_hub(hub)


async def user_account(name: str) -> None:
    """The system account a root hub submits NAME's jobs as (a cluster's user account)."""
    await ensure_account(account_name(TEST_ACCOUNT_PREFIX, name), f"gilhub test {name}")


async def wait_until(condition, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def node_filled(slurm: SlurmCluster) -> AsyncIterator[str]:
    """Inside the block a job of root's takes every CPU of the node (its id is yielded),
    so that other jobs wait for resources."""
    filler = slurm.run(
        "sbatch", "--parsable", f"--ntasks={NODE_CPUS}", "--output=/dev/null", "--wrap=sleep 600"
    ).stdout.strip()
    try:
        await wait_until(lambda: slurm.job_states().get(filler) == "RUNNING")
        yield filler
    finally:
        slurm.run("scancel", filler)
