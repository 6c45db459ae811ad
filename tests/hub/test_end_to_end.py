"""The hub end to end, through its public interfaces only: the REST API and the proxy.

A user's server is started and stopped over ``/hub/api/``, reached over HTTP and a kernel
WebSocket through ``/user/NAME/``, survives a restart of the hub, and its death is noticed.
Everything is real: the hub, PostgreSQL, ``jupyter_server`` children, HTTP and WebSocket.
"""

from __future__ import annotations

import uuid

import httpx
import psutil
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.engine import URL

from tests.hub.conftest import RunningHub, start_test_hub
from tests.hub.servers_harness import (
    execute,
    progress_events,
    server_model,
    start_server,
    wait_until_gone,
)

pytestmark = pytest.mark.timeout(300)


async def server_pid(hub: RunningHub, name: str) -> int:
    """The server's process id, as the local spawner recorded it in its state (kept by the
    hub's ``servers`` table without being read by it)."""
    async with hub.app.db.connect() as conn:
        pid = await conn.scalar(
            text(
                "SELECT (s.spawner_state->>'pid')::int FROM servers s"
                " JOIN users u ON u.id = s.user_id WHERE u.name = :n"
            ),
            {"n": name},
        )
    assert pid is not None
    return pid


async def new_person(hub: RunningHub) -> tuple[str, httpx.AsyncClient]:
    """A new user, and a client carrying a fresh API token of theirs."""
    user = await hub.add_user()
    token = await hub.token_for(user.name)
    return user.name, hub.client(headers={"Authorization": f"token {token}"})


async def test_start_use_and_stop_a_server_over_api_and_proxy(hub: RunningHub) -> None:
    """One user's journey: start over the API, HTTP and a kernel through the proxy, stop."""
    name, client = await new_person(hub)
    await start_server(client, name)
    model = await server_model(client, name)
    assert model["ready"] and model["url"] == f"/user/{name}/"

    status = await client.get(f"/user/{name}/api/status")
    assert status.status_code == 200 and "kernels" in status.json()
    kernel = await client.post(f"/user/{name}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    url = f"{hub.url.replace('http', 'ws', 1)}/user/{name}/api/kernels/{kernel.json()['id']}"
    async with websockets.connect(f"{url}/channels", additional_headers=client.headers) as ws:
        assert (await execute(ws, "1+1", uuid.uuid4().hex))[0] == "2"

    pid = await server_pid(hub, name)
    response = await client.delete(f"/hub/api/users/{name}/server")
    assert response.status_code in (202, 204)
    await wait_until_gone(client, name)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    stopped = await client.get(f"/user/{name}/api/status")
    assert stopped.status_code == 503
    assert "not running" in stopped.json()["message"]


async def test_a_dead_server_is_noticed_and_can_be_started_again(hub: RunningHub) -> None:
    name, client = await new_person(hub)
    await start_server(client, name)
    psutil.Process(await server_pid(hub, name)).kill()

    await wait_until_gone(client, name)
    assert (await client.get(f"/user/{name}/api/status")).status_code == 503
    await start_server(client, name)
    assert (await client.get(f"/user/{name}/api/status")).status_code == 200
    await client.delete(f"/hub/api/users/{name}/server")
    await wait_until_gone(client, name)


async def test_a_restarted_hub_keeps_running_servers(
    database_url: URL, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Stop the hub process's work entirely, start a new hub on the same data: same server."""
    data_dir = tmp_path_factory.mktemp("restarted-hub")
    first = RunningHub(app=await start_test_hub(database_url, data_dir), url="")
    second: RunningHub | None = None
    try:
        first.url = f"http://127.0.0.1:{first.app.bound_port}"
        name, client = await new_person(first)
        await start_server(client, name)
        pid = await server_pid(first, name)
        token = client.headers["Authorization"]
        await first.close_clients()
        await first.app.stop_hub()  # user servers are left running

        assert psutil.pid_exists(pid)
        second = RunningHub(app=await start_test_hub(database_url, data_dir), url="")
        second.url = f"http://127.0.0.1:{second.app.bound_port}"
        client = second.client(headers={"Authorization": token})
        # the new hub listens at once and re-adopts the server in the background
        assert (await progress_events(client, name))[-1]["ready"]
        model = await server_model(client, name)
        assert model is not None and model["ready"]
        assert (await client.get(f"/user/{name}/api/status")).status_code == 200
        assert await server_pid(second, name) == pid
    finally:
        for running in (first, second):
            if running is not None and running.app.servers is not None:
                await running.close_clients()
                running.app.servers.cleanup_servers = True
                await running.app.stop_hub()
