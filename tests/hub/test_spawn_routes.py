"""JupyterHub's spawn routes and activity API, and the spawn limits, on a real hub.

``/hub/spawn`` and ``/hub/spawn/NAME`` (GET starts, POST starts), ``POST
/hub/api/users/NAME/activity``, and HTTP 429 with ``Retry-After`` beyond
``active_server_limit`` or a full spawn queue, as tools written for JupyterHub
(hubtraf, jupyterhub-singleuser's activity reports) expect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from gilhub.servers import ServerState
from tests.hub.conftest import USER_PASSWORD, RunningHub


async def logged_in(hub: RunningHub) -> tuple[str, httpx.AsyncClient]:
    user = await hub.add_user()
    return user.name, await hub.login(user.name, USER_PASSWORD)


async def token_client(hub: RunningHub, name: str) -> httpx.AsyncClient:
    return hub.client(headers={"Authorization": f"token {await hub.token_for(name)}"})


async def wait_for(hub: RunningHub, name: str, state: ServerState) -> None:
    async with asyncio.timeout(120):
        while hub.app.servers.status(name).state != state:
            await asyncio.sleep(0.05)


async def stop(hub: RunningHub, *names: str) -> None:
    for name in names:
        server = hub.app.servers._servers.get(name)
        if server is not None:
            await hub.app.servers.stop(server.user)


@contextlib.contextmanager
def servers_that_never_answer(hub: RunningHub):
    """Starts stay pending until stopped: limits can be tested without timing."""
    spawner_config = hub.app.config.LocalProcessSpawner
    spawner_config.cmd = [sys.executable, "-c", "import time; time.sleep(120)"]
    try:
        yield
    finally:
        del spawner_config["cmd"]


# -- /hub/spawn -------------------------------------------------------------------------


async def test_get_spawn_starts_my_server_and_then_leads_to_it(hub: RunningHub) -> None:
    name, client = await logged_in(hub)
    started = await client.get("/hub/spawn", params={"next": f"/user/{name}/tree"})
    assert started.status_code == 302
    assert started.headers["Location"] == (
        f"/hub/spawn-pending/{name}?next=%2Fuser%2F{name}%2Ftree"
    )
    assert hub.app.servers.status(name).state != ServerState.STOPPED
    await wait_for(hub, name, ServerState.RUNNING)
    again = await client.get("/hub/spawn")
    assert again.status_code == 302 and again.headers["Location"] == f"/user/{name}/lab"
    await stop(hub, name)


async def test_post_spawn_starts_and_spawn_for_others_is_refused(hub: RunningHub) -> None:
    name, client = await logged_in(hub)
    other, _ = await logged_in(hub)
    xsrf = {"_xsrf": hub.xsrf_token(client)}
    with servers_that_never_answer(hub):
        for path in (f"/hub/spawn/{other}", "/hub/spawn/no-such-user"):
            assert (await client.get(path)).status_code == 403
            assert (await client.post(path, data=xsrf)).status_code == 403
        assert hub.app.servers.status(other).state == ServerState.STOPPED

        started = await client.post("/hub/spawn", data=xsrf)
        assert started.status_code == 303
        assert started.headers["Location"].startswith(f"/hub/spawn-pending/{name}?")
        assert hub.app.servers.status(name).state.pending == "spawn"

        admin = await hub.login(hub.admin_name, hub.admin_password)
        by_admin = await admin.get(f"/hub/spawn/{other}")
        assert by_admin.status_code == 302
        assert hub.app.servers.status(other).state.pending == "spawn"
        assert (await admin.get("/hub/spawn/no-such-user")).status_code == 404
        await stop(hub, name, other)


async def test_get_spawn_after_a_failed_start_shows_the_error_instead_of_looping(
    hub: RunningHub,
) -> None:
    name, client = await logged_in(hub)
    spawner_config = hub.app.config.LocalProcessSpawner
    spawner_config.cmd = [sys.executable, "-c", "raise SystemExit(4)"]
    try:
        await client.post(f"/hub/spawn/{name}", data={"_xsrf": hub.xsrf_token(client)})
        await wait_for(hub, name, ServerState.STOPPED)
    finally:
        del spawner_config["cmd"]
    page = await client.get("/hub/spawn")
    assert page.status_code == 200
    assert "The last start failed" in page.text and "code 4" in page.text
    assert hub.app.servers.status(name).state == ServerState.STOPPED
    # where the whole log is (from the spawner) is for admins, not for everyone
    mine = await client.get(f"/hub/spawn-pending/{name}")
    assert mine.status_code == 500 and "The whole log" not in mine.text
    admin = await hub.login(hub.admin_name, hub.admin_password)
    theirs = await admin.get(f"/hub/spawn-pending/{name}")
    assert f"logs/{name}.log</code>" in theirs.text


# -- spawn limits -----------------------------------------------------------------------


async def test_beyond_the_active_server_limit_starts_get_429(hub: RunningHub) -> None:
    first, first_client = await logged_in(hub)
    second, second_client = await logged_in(hub)
    manager = hub.app.servers
    with servers_that_never_answer(hub):
        await first_client.get("/hub/spawn")
        manager.active_server_limit = sum(
            1 for s in manager._servers.values() if s.state != ServerState.STOPPED
        )
        try:
            api = await token_client(hub, second)
            refused = await api.post(f"/hub/api/users/{second}/server")
            assert refused.status_code == 429
            assert refused.json()["message"] == (
                "Active server limit exceeded. Try again in a few minutes."
            )
            assert int(refused.headers["Retry-After"]) > 0
            page = await second_client.get("/hub/spawn")
            assert page.status_code == 429 and "Active server limit" in page.text
            assert manager.status(second).state == ServerState.STOPPED
        finally:
            manager.active_server_limit = 0
        await stop(hub, first)


async def test_a_full_spawn_queue_answers_429_with_retry_after(hub: RunningHub) -> None:
    names = [(await hub.add_user()).name for _ in range(3)]
    apis = [await token_client(hub, name) for name in names]
    manager = hub.app.servers
    saved = manager.concurrent_spawn_limit, manager.spawn_queue_limit
    manager.concurrent_spawn_limit, manager.spawn_queue_limit = 1, 1
    try:
        with servers_that_never_answer(hub):
            first = await apis[0].post(f"/hub/api/users/{names[0]}/server")
            queued = await apis[1].post(f"/hub/api/users/{names[1]}/server")
            assert (first.status_code, queued.status_code) == (202, 202)
            refused = await apis[2].post(f"/hub/api/users/{names[2]}/server")
            assert refused.status_code == 429
            assert refused.json()["message"].startswith("Too many servers are starting right now.")
            assert refused.headers["Retry-After"] == str(manager.spawn_retry_after)
            model = (await apis[1].get(f"/hub/api/users/{names[1]}")).json()
            assert model["pending"] == "spawn" and model["servers"][""]["ready"] is False
            await stop(hub, *names)
            # stopping the running start and the queued one frees the slot and the line
            again = await apis[2].post(f"/hub/api/users/{names[2]}/server")
            assert again.status_code == 202
            await wait_for(hub, names[2], ServerState.STARTING)
            await stop(hub, names[2])
    finally:
        manager.concurrent_spawn_limit, manager.spawn_queue_limit = saved


async def test_a_queued_start_gets_its_whole_timeout_once_it_leaves_the_queue(
    hub: RunningHub,
) -> None:
    first, second = await hub.add_user(), await hub.add_user()
    manager = hub.app.servers
    saved = manager.concurrent_spawn_limit
    manager.concurrent_spawn_limit = 1
    hub.app.config.LocalProcessSpawner.start_timeout = 2.0
    try:
        with servers_that_never_answer(hub):
            await manager.start(first)
            await manager.start(second)
            second_events = [event async for event in manager.progress(second.name)]
            first_events = [event async for event in manager.progress(first.name)]
    finally:
        manager.concurrent_spawn_limit = saved
        del hub.app.config.LocalProcessSpawner["start_timeout"]
    for events in (first_events, second_events):
        assert events[-1]["failed"]
        assert "did not answer within 2 seconds" in events[-1]["message"]
    messages = [event["message"] for event in second_events]
    queued = next(i for i, event in enumerate(second_events) if "queue_position" in event)
    # it waited its turn, then started and got its own 2 s: a clock started in the queue
    # would have ended it there, before it ever started
    assert messages.index("Starting the server") > queued


# -- POST /hub/api/users/NAME/activity --------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


async def last_activity(hub: RunningHub, name: str) -> str | None:
    admin = await token_client(hub, hub.admin_name)
    return (await admin.get(f"/hub/api/users/{name}")).json()["last_activity"]


async def test_activity_reports_move_last_activity_forward(hub: RunningHub) -> None:
    name = (await hub.add_user()).name
    api = await token_client(hub, name)
    reported = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    body = {"last_activity": iso(reported), "servers": {"": {"last_activity": iso(reported)}}}
    answer = await api.post(f"/hub/api/users/{name}/activity", json=body)
    assert answer.status_code == 204
    assert await last_activity(hub, name) == iso(reported)

    older = {"last_activity": iso(reported - timedelta(hours=1))}
    assert (await api.post(f"/hub/api/users/{name}/activity", json=older)).status_code == 204
    assert await last_activity(hub, name) == iso(reported)  # never moves back

    admin = await token_client(hub, hub.admin_name)
    newer = {"servers": {"": {"last_activity": iso(reported + timedelta(minutes=1))}}}
    assert (await admin.post(f"/hub/api/users/{name}/activity", json=newer)).status_code == 204
    assert await last_activity(hub, name) == iso(reported + timedelta(minutes=1))


async def test_activity_of_another_user_is_refused(hub: RunningHub) -> None:
    name = (await hub.add_user()).name
    intruder = await token_client(hub, (await hub.add_user()).name)
    before = await last_activity(hub, name)
    body = {"last_activity": iso(datetime.now(timezone.utc))}
    refused = await intruder.post(f"/hub/api/users/{name}/activity", json=body)
    assert refused.status_code == 403
    assert await last_activity(hub, name) == before
    anonymous = await hub.client().post(f"/hub/api/users/{name}/activity", json=body)
    assert anonymous.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({}, "needs last_activity"),
        ({"last_activity": "yesterday"}, "Not an ISO 8601 time"),
        ({"last_activity": 12}, "must be an ISO 8601 time"),
        ({"last_activity": "2026-01-01T00:00:00Z" + "0" * 100}, "must be an ISO 8601 time"),
        ({"last_activity": "2999-01-01T00:00:00Z"}, "in the future"),
        ({"servers": {"named": {"last_activity": "2026-01-01T00:00:00Z"}}}, "No such server"),
        ({"servers": {"": "2026-01-01T00:00:00Z"}}, "servers must look like"),
        ({"servers": {"": {}}}, "servers must look like"),
    ],
)
async def test_bad_activity_reports_are_400_and_change_nothing(
    hub: RunningHub, body: object, message: str
) -> None:
    name = (await hub.add_user()).name
    api = await token_client(hub, name)
    answer = await api.post(f"/hub/api/users/{name}/activity", json=body)
    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert await last_activity(hub, name) is None
