"""The JupyterHub-compatible REST API, against a real hub with real user servers."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx
import pytest

from gilhub.servers import ServerState
from tests.hub.conftest import RunningHub

PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@pytest.fixture(scope="module")
async def admin_api(hub: RunningHub) -> httpx.AsyncClient:
    return hub.client(headers=auth(await hub.token_for(hub.admin_name)))


async def user_api(hub: RunningHub) -> tuple[str, httpx.AsyncClient]:
    user = await hub.add_user()
    return user.name, hub.client(headers=auth(await hub.token_for(user.name)))


async def test_version_and_health_need_no_login(hub: RunningHub) -> None:
    client = hub.client()
    version = await client.get("/hub/api/")
    assert version.status_code == 200
    assert version.json()["version"] >= "1.3.0"  # the culler filters by state from 1.3 on
    health = await client.get("/hub/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


async def test_anonymous_api_calls_get_json_403(hub: RunningHub) -> None:
    response = await hub.client().get("/hub/api/users")
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": 403, "message": "Login required."}


async def test_current_user(hub: RunningHub) -> None:
    name, api = await user_api(hub)
    model = (await api.get("/hub/api/user")).json()
    assert model["name"] == name
    assert model["kind"] == "user"
    assert model["admin"] is False
    assert model["servers"] == {}
    assert model["server"] is None and model["pending"] is None


async def test_admins_list_everyone_others_only_themselves(
    hub: RunningHub, admin_api: httpx.AsyncClient
) -> None:
    name, api = await user_api(hub)
    everyone = [u["name"] for u in (await admin_api.get("/hub/api/users")).json()]
    assert hub.admin_name in everyone and name in everyone
    assert [u["name"] for u in (await api.get("/hub/api/users")).json()] == [name]


async def test_user_listing_paginates(hub: RunningHub, admin_api: httpx.AsyncClient) -> None:
    for _ in range(3):
        await hub.add_user()
    first = (await admin_api.get("/hub/api/users?limit=2", headers=PAGINATED)).json()
    assert len(first["items"]) == 2
    assert first["_pagination"]["total"] >= 4
    names = [u["name"] for u in first["items"]]
    while first["_pagination"]["next"]:
        first = (await admin_api.get(first["_pagination"]["next"]["url"], headers=PAGINATED)).json()
        names += [u["name"] for u in first["items"]]
    everyone = [u["name"] for u in (await admin_api.get("/hub/api/users")).json()]
    assert names == everyone


async def test_state_filter(hub: RunningHub, admin_api: httpx.AsyncClient) -> None:
    ready = await admin_api.get("/hub/api/users?state=ready")
    assert ready.status_code == 200 and ready.json() == []
    inactive = await admin_api.get("/hub/api/users?state=inactive")
    assert hub.admin_name in [u["name"] for u in inactive.json()]
    assert (await admin_api.get("/hub/api/users?state=bogus")).status_code == 400


async def test_one_user_and_permissions(hub: RunningHub, admin_api: httpx.AsyncClient) -> None:
    alice, alice_api = await user_api(hub)
    bob, _ = await user_api(hub)
    assert (await alice_api.get(f"/hub/api/users/{alice}")).json()["name"] == alice
    assert (await alice_api.get(f"/hub/api/users/{bob}")).status_code == 403
    assert (await admin_api.get(f"/hub/api/users/{bob}")).json()["name"] == bob
    assert (await admin_api.get("/hub/api/users/no-such-user")).status_code == 404
    assert (await alice_api.post("/hub/api/users/newbie", json={})).status_code == 403
    assert (await alice_api.delete(f"/hub/api/users/{bob}")).status_code == 403


async def test_admin_creates_patches_and_deletes_users(
    hub: RunningHub, admin_api: httpx.AsyncClient
) -> None:
    created = await admin_api.post("/hub/api/users/carol", json={"admin": False})
    assert created.status_code == 201
    password = created.json()["password"]  # generated, shown once
    assert (await hub.login("carol", password)).cookies
    assert (await admin_api.post("/hub/api/users/carol", json={})).status_code == 409
    patched = await admin_api.patch("/hub/api/users/carol", json={"admin": True})
    assert patched.json()["admin"] is True
    assert (await admin_api.delete("/hub/api/users/carol")).status_code == 204
    assert (await admin_api.get("/hub/api/users/carol")).status_code == 404
    assert (await admin_api.delete(f"/hub/api/users/{hub.admin_name}")).status_code == 400


@pytest.mark.parametrize("name", ["a" * 10_000, "<b>x</b>", "UPPER", "-dash", "a/b"])
async def test_invalid_user_names_are_400(
    hub: RunningHub, admin_api: httpx.AsyncClient, name: str
) -> None:
    response = await admin_api.post(f"/hub/api/users/{name}", json={})
    assert response.status_code in (400, 404)  # "a/b" does not even match the route
    if response.status_code == 400:
        assert "Invalid user name" in response.json()["message"]
        assert "<b>" not in response.text


async def test_malformed_json_is_400(hub: RunningHub, admin_api: httpx.AsyncClient) -> None:
    response = await admin_api.post("/hub/api/users/dave", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["message"] == "Request body is not valid JSON."


async def test_tokens_create_list_delete(hub: RunningHub) -> None:
    name, api = await user_api(hub)
    created = await api.post(f"/hub/api/users/{name}/tokens", json={"note": "culler"})
    assert created.status_code == 201
    model = created.json()
    assert model["token"].startswith("gh_") and model["note"] == "culler"
    new_api = hub.client(headers=auth(model["token"]))
    assert (await new_api.get("/hub/api/user")).json()["name"] == name
    listed = (await api.get(f"/hub/api/users/{name}/tokens")).json()["api_tokens"]
    assert model["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    assert (await api.get(f"/hub/api/users/{name}/tokens/{model['id']}")).status_code == 200
    assert (await api.delete(f"/hub/api/users/{name}/tokens/{model['id']}")).status_code == 204
    assert (await new_api.get("/hub/api/user")).status_code == 403
    assert (await api.delete(f"/hub/api/users/{name}/tokens/{model['id']}")).status_code == 404


async def test_server_start_progress_and_stop(hub: RunningHub) -> None:
    name, api = await user_api(hub)
    started = await api.post(f"/hub/api/users/{name}/server")
    assert started.status_code in (201, 202)
    events = []
    async with api.stream("GET", f"/hub/api/users/{name}/server/progress") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert events[-1]["ready"] is True, events
    assert events[-1]["url"] == f"/user/{name}/"
    model = (await api.get("/hub/api/user")).json()
    server = model["servers"][""]
    assert server["ready"] is True and server["pending"] is None
    assert server["started"].endswith("Z") and server["url"] == f"/user/{name}/"
    assert model["server"] == f"/user/{name}/"
    assert (await api.post(f"/hub/api/users/{name}/server")).status_code == 400  # running
    stopped = await api.delete(f"/hub/api/users/{name}/server")
    assert stopped.status_code in (202, 204)
    async with asyncio.timeout(60):
        while (await api.get("/hub/api/user")).json()["servers"]:
            await asyncio.sleep(0.1)


async def test_idle_culler_stops_an_idle_server(
    hub: RunningHub, admin_api: httpx.AsyncClient
) -> None:
    """The PyPI jupyterhub-idle-culler, pointed at gilhub with a gilhub token."""
    name, api = await user_api(hub)
    await api.post(f"/hub/api/users/{name}/server")
    async with api.stream("GET", f"/hub/api/users/{name}/server/progress") as stream:
        async for _ in stream.aiter_lines():
            pass
    assert hub.app.servers.status(name).state == ServerState.RUNNING
    culler = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--url={hub.url}/hub/api",
        "--timeout=1",
        "--cull-every=1",
        env={**os.environ, "JUPYTERHUB_API_TOKEN": admin_api.headers["Authorization"].split()[1]},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(90):
            while hub.app.servers.status(name).state != ServerState.STOPPED:
                assert culler.returncode is None, "the culler exited early"
                await asyncio.sleep(0.1)
    finally:
        culler.terminate()
        output, _ = await culler.communicate()
    assert f"Culling server {name}" in output.decode(), output.decode()


async def test_unknown_api_path_is_json_404(hub: RunningHub, admin_api: httpx.AsyncClient) -> None:
    response = await admin_api.get("/hub/api/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "message": "No such API endpoint."}
