"""The hub with many servers: its exit stops them all, its activity saves write only changes.

The servers are toy batch jobs (``fake_batch_job.py`` through the contract test's
:class:`BatchJobSpawner`): each answers what the hub asks of a server and is cheap
enough to run dozens at once on a small machine.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from gilhub.db import create_engine
from gilhub.servers import ServerState
from tests.hub.servers_harness import add_person, start_and_wait, start_hub, stop_hub, using_spawner
from tests.hub.test_spawner_contract import BatchJobSpawner

SERVERS = 24
STOP_LIMIT = 3


class CountedStops(BatchJobSpawner):
    """Counts how many of its kind are stopping at the same moment."""

    stopping = 0
    most_stopping = 0

    async def stop(self) -> None:
        cls = CountedStops
        cls.stopping += 1
        cls.most_stopping = max(cls.most_stopping, cls.stopping)
        try:
            await asyncio.sleep(0.05)  # a stop is never instant: let the others overlap
            await super().stop()
        finally:
            cls.stopping -= 1


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage() + (record.exc_text or ""))


@pytest.fixture
async def hub(database_url, tmp_path):
    hub = await start_hub(database_url, tmp_path)
    hub.servers.concurrent_spawn_limit = 8
    try:
        with using_spawner(hub, CountedStops):
            yield hub
    finally:
        await stop_hub(hub)


async def recorded_servers(database_url) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM servers"))).scalar_one()
    finally:
        await engine.dispose()


async def test_hub_exit_stops_every_server_a_bounded_number_at_a_time(hub, database_url):
    people = [await add_person(hub, f"many-{number}") for number in range(SERVERS)]
    for events in await asyncio.gather(*(start_and_wait(hub, p.user) for p in people)):
        assert events[-1]["ready"], events
    assert await recorded_servers(database_url) == SERVERS
    recorded = Recorded()
    hub.log.addHandler(recorded)
    hub.servers.concurrent_stop_limit = STOP_LIMIT
    hub.servers.cleanup_servers = True
    try:
        await hub.servers.shutdown()
    finally:
        hub.log.removeHandler(recorded)
    assert [hub.servers.status(p.name).state for p in people] == [ServerState.STOPPED] * SERVERS
    assert await recorded_servers(database_url) == 0
    assert 1 < CountedStops.most_stopping <= STOP_LIMIT
    assert recorded.messages == []


async def test_the_stop_limit_defaults_to_the_database_pool_size(hub):
    assert hub.servers.concurrent_stop_limit == hub.db.pool.size()


async def row_versions(hub, user_id: int) -> tuple[str, str]:
    """The rows' transaction ids (``xmin``): any UPDATE, even to the same value, changes them."""
    async with hub.db.connect() as conn:
        server = await conn.execute(
            text("SELECT xmin::text FROM servers WHERE user_id = :id"), {"id": user_id}
        )
        user = await conn.execute(
            text("SELECT xmin::text FROM users WHERE id = :id"), {"id": user_id}
        )
        return server.scalar_one(), user.scalar_one()


async def last_activity(hub, user_id: int):
    async with hub.db.connect() as conn:
        result = await conn.execute(
            text("SELECT last_activity FROM servers WHERE user_id = :id"), {"id": user_id}
        )
        return result.scalar_one()


async def test_activity_saves_leave_an_unchanged_server_alone(hub):
    idle, busy = await add_person(hub, "idle"), await add_person(hub, "busy")
    for person in (idle, busy):
        assert (await start_and_wait(hub, person.user))[-1]["ready"]
    await hub.servers._save_activity(force=True)
    idle_before, busy_before = (
        await row_versions(hub, idle.user.id),
        await row_versions(hub, busy.user.id),
    )

    later = hub.servers.status(busy.name).last_activity + timedelta(seconds=5)
    hub.servers.record_activity(busy.name, later)
    await hub.servers._save_activity(force=True)

    assert await row_versions(hub, idle.user.id) == idle_before
    busy_after = await row_versions(hub, busy.user.id)
    assert busy_after[0] != busy_before[0] and busy_after[1] != busy_before[1]
    assert await last_activity(hub, busy.user.id) == later
