"""200 users' jobs cost the hub one ``squeue`` call per interval (a simulated Slurm), and
the hub's exit stops all 200 (``cleanup_servers``, a bounded number at a time)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gilhub.servers import ServerState
from tests.hub.servers_harness import add_person, start_hub, stop_hub, wait_for_state
from tests.slurm.fake_slurm import FakeSlurm, fake_slurm_config

USERS = 200
INTERVAL = 0.5
WATCHED_INTERVALS = 4
# a stop waits for the next squeue to see its job end: many at once keep the exit short
STOPS_AT_ONCE = 50


@pytest.fixture(scope="module")
async def fake_slurm(tmp_path_factory):
    fake = FakeSlurm(tmp_path_factory.mktemp("fake-slurm"))
    fake.start_node()
    yield fake
    fake.stop_node()


# 200 starts through the whole path (sbatch, address report, readiness): about a minute on
# two idle cores, several on a busy machine
@pytest.mark.timeout(900)
async def test_two_hundred_jobs_cost_one_squeue_call_per_interval(
    database_url, tmp_path_factory, fake_slurm
):
    config = fake_slurm_config(fake_slurm, INTERVAL)
    config.ServerManager.concurrent_stop_limit = STOPS_AT_ONCE
    hub = await start_hub(database_url, tmp_path_factory.mktemp("scale-hub"), config)
    try:
        people = [await add_person(hub, f"scale{number}") for number in range(USERS)]
        began = time.monotonic()
        for person in people:
            await hub.servers.start(person.user)
        for person in people:
            await wait_for_state(hub, person.name, ServerState.RUNNING, timeout=600)
        started = time.monotonic()
        assert fake_slurm.squeue_calls(began, started) <= (started - began) / INTERVAL + 1

        await asyncio.sleep(WATCHED_INTERVALS * INTERVAL)  # all 200 running, watched by the hub
        watched = time.monotonic()
        calls = fake_slurm.squeue_calls(started, watched)
        assert 1 <= calls <= (watched - started) / INTERVAL + 1
        assert all(
            hub.servers.status(person.name).state == ServerState.RUNNING for person in people
        )
    finally:
        await stop_hub(hub)
    # the exit went through (a pool timeout would have raised) and ended every job (shut down,
    # or cancelled when it did not end within shutdown_wait)
    ended = {"COMPLETED", "CANCELLED"}
    assert all(fake_slurm.job_state(person.name) in ended for person in people)
