"""Twenty servers asked for at the same moment all start: the spawn queue at work.

Without a queue, twenty jupyter_servers importing at once on a small machine all
ran out of their start timeout. With ``concurrent_spawn_limit`` two start at a
time, the others wait in line, each told how many starts come before it, and
each one's timeout counts from its own start. The servers are real
jupyter_servers, made as cheap as a real server gets (no JupyterLab, files on
disk) so that the test is about the queue, not about JupyterLab's imports.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from traitlets.config import Config

from gilhub.servers import ServerState
from tests.hub.conftest import running_hub

USERS = 20
CONCURRENT = 2
CHEAPEST_SERVER = {
    "server_extensions": {
        "gilhub.serverext": True,
        **dict.fromkeys(
            (
                "jupyterlab",
                "jupyter_server_terminals",
                "jupyter_lsp",
                "nbdime",
                "jupyter_server_mathjax",
                "notebook_shim",
            ),
            False,
        ),
    },  # fmt: skip
    "contents_manager_class": (
        "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
    ),
}


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory):
    config = Config()
    config.ServerManager.concurrent_spawn_limit = CONCURRENT
    config.LocalProcessSpawner.update(CHEAPEST_SERVER)
    async with running_hub(database_url, tmp_path_factory.mktemp("queue"), config) as running:
        yield running


async def progress_events(client: httpx.AsyncClient, name: str) -> list[dict]:
    """The user's spawn progress as the API streams it, until ready or failed."""
    events = []
    async with client.stream("GET", f"/hub/api/users/{name}/server/progress") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events


async def test_twenty_simultaneous_starts_all_become_ready_in_queue_order(hub) -> None:
    names = [(await hub.add_user()).name for _ in range(USERS)]
    clients = [
        hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})
        for name in names
    ]
    for client in clients:
        client.timeout = httpx.Timeout(600)  # the progress streams last until the last start
    people = list(zip(clients, names, strict=True))
    most_starting = 0

    async def watch_concurrency() -> None:
        nonlocal most_starting
        while True:
            states = [hub.app.servers.status(name).state for name in names]
            most_starting = max(most_starting, states.count(ServerState.STARTING))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_concurrency())
    try:
        answers = await asyncio.gather(
            *(client.post(f"/hub/api/users/{name}/server") for client, name in people)
        )
        assert [answer.status_code for answer in answers] == [202] * USERS
        async with asyncio.timeout(900):  # generous: 20 real servers on a shared 2-core machine
            streams = await asyncio.gather(
                *(progress_events(client, name) for client, name in people)
            )
    finally:
        watcher.cancel()

    failures = {
        name: events[-1]
        for name, events in zip(names, streams, strict=True)
        if not events[-1]["ready"]
    }
    assert failures == {}, failures  # none timed out
    assert all(hub.app.servers.status(name).state == ServerState.RUNNING for name in names)
    assert most_starting <= CONCURRENT

    queued = [[e for e in events if "queue_position" in e] for events in streams]
    assert sum(1 for events in queued if events) >= USERS // 2
    longest_wait = max(queued, key=len)
    assert longest_wait[0]["queue_position"] >= 3
    assert "servers are starting before this one" in longest_wait[0]["message"]
    for events in queued:  # first come, first served: a place in line only improves
        places = [event["queue_position"] for event in events]
        assert places == sorted(places, reverse=True)

    await asyncio.gather(*(hub.app.servers.stop(s.user) for s in hub.app.servers._servers.values()))
