"""The gilhub server extension: TCP_NODELAY on kernel WebSockets, token kept out of pages.

A real hub starts real user servers; a kernel runs ``1`` twenty times over its
WebSocket through the proxy. The test checks that the server set the socket
option (the extension reads it back and logs it) and reports the median round
trip, with and without the extension; it asserts no time.
"""

from __future__ import annotations

import json
import re
import statistics
import uuid
from pathlib import Path

import httpx
import pytest
from traitlets.config import Config
from websockets.asyncio.client import connect as websocket_connect

from gilhub.servers import ServerState
from gilhub.spawner.local import LocalProcessSpawner
from tests.hub.servers_harness import (
    add_person,
    execute,
    hub_url,
    start_and_wait,
    start_hub,
    stop_hub,
    using_spawner,
    wait_for_state,
)

ROUNDS = 20


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory):
    config = Config()
    config.LocalProcessSpawner.args = ["--ServerApp.log_level=DEBUG"]
    hub = await start_hub(database_url, tmp_path_factory.mktemp("hub"), config)
    try:
        yield hub
    finally:
        await stop_hub(hub)


class WithoutExtension(LocalProcessSpawner):
    """The same server with gilhub's extension switched off, for comparison."""

    def server_settings(self, port: int) -> dict[str, str]:
        return {
            **super().server_settings(port),
            "ServerApp.jpserver_extensions": "gilhub.serverext=False",
        }


async def kernel_round_trips(hub, person) -> list[float]:
    async with httpx.AsyncClient(base_url=hub_url(hub), headers=person.token_header) as client:
        created = await client.post(f"/user/{person.name}/api/kernels")
        assert created.status_code == 201, created.text
    kernel_id = created.json()["id"]
    url = hub_url(hub, f"/user/{person.name}/api/kernels/{kernel_id}/channels", scheme="ws")
    session = uuid.uuid4().hex
    async with websocket_connect(url, additional_headers=person.cookie_header) as websocket:
        assert (await execute(websocket, "1", session))[0] == "1"  # warm-up
        trips = []
        for _ in range(ROUNDS):
            result, round_trip = await execute(websocket, "1", session)
            assert result == "1"
            trips.append(round_trip)
    return trips


def report(extension: str, trips: list[float]) -> None:
    median_ms = statistics.median(trips) * 1000
    print(f"\nkernel round trip through gilhub, extension {extension}: median {median_ms:.1f} ms")


def server_log(hub, name: str) -> str:
    return (Path(hub.data_dir) / "logs" / f"{name}.log").read_text()


async def test_kernel_websockets_get_tcp_nodelay(hub):
    alice = await add_person(hub, "alice")
    assert (await start_and_wait(hub, alice.user))[-1]["ready"]

    trips = await kernel_round_trips(hub, alice)

    assert "gilhub server extension loaded" in server_log(hub, "alice")
    assert "gilhub: kernel websocket TCP_NODELAY=1" in server_log(hub, "alice")
    report("on", trips)


async def test_round_trip_without_the_extension_for_comparison(hub):
    bob = await add_person(hub, "bob")
    with using_spawner(hub, WithoutExtension):
        assert (await start_and_wait(hub, bob.user))[-1]["ready"]

    trips = await kernel_round_trips(hub, bob)

    assert "TCP_NODELAY" not in server_log(hub, "bob")
    report("off", trips)


async def test_logging_out_of_the_server_logs_out_of_the_hub(hub):
    carol = await add_person(hub, "carol")
    assert (await start_and_wait(hub, carol.user))[-1]["ready"]

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=carol.cookie_header) as client:
        response = await client.get("/user/carol/logout")

    assert response.status_code == 302
    assert response.headers["Location"] == "/hub/logout"


async def test_jupyterlab_file_menu_has_one_log_out(hub):
    dave = await add_person(hub, "dave")
    assert (await start_and_wait(hub, dave.user))[-1]["ready"]
    plugin = "@jupyterlab/mainmenu-extension:plugin"

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=dave.token_header) as client:
        response = await client.get(f"/user/dave/lab/api/settings/{plugin}")

    assert response.status_code == 200, response.text
    file_menu = next(
        menu for menu in response.json()["schema"]["properties"]["menus"]["default"]
        if menu["id"] == "jp-mainmenu-file"
    )  # fmt: skip
    assert {"command": "filemenu:logout", "disabled": True} in file_menu["items"]


async def test_shut_down_from_jupyterlab_is_a_clean_stop(hub):
    erin = await add_person(hub, "erin")
    assert (await start_and_wait(hub, erin.user))[-1]["ready"]

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=erin.token_header) as client:
        response = await client.post("/user/erin/api/shutdown")
    assert response.status_code == 200, response.text
    await wait_for_state(hub, "erin", ServerState.STOPPED)

    assert hub.servers.status("erin").error is None


async def test_notebook_7_is_served_beside_jupyterlab(hub):
    frank = await add_person(hub, "frank")
    assert (await start_and_wait(hub, frank.user))[-1]["ready"]

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=frank.cookie_header) as client:
        response = await client.get("/user/frank/tree")

    assert response.status_code == 200
    assert "notebook" in response.text.lower()


async def test_pages_leave_out_front_ends_whose_server_extension_is_off(hub):
    """nbdime's server extension is off in users' servers (the hub diffs notebooks itself):
    its JupyterLab front end would offer diff buttons that get 404s."""
    gwen = await add_person(hub, "gwen")
    assert (await start_and_wait(hub, gwen.user))[-1]["ready"]

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=gwen.cookie_header) as client:
        for path in ("/user/gwen/lab", "/user/gwen/notebooks/any.ipynb"):
            page = await client.get(path)
            assert page.status_code == 200
            config = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)
            assert config is not None, page.text
            disabled = json.loads(config[1])["disabledExtensions"]
            assert isinstance(disabled, list)  # as the page reads it
            assert "nbdime-jupyterlab" in disabled


async def test_notebook_7_pages_do_not_carry_the_server_token(hub):
    """The page would hand the browser the server's secret, and the browser would send it as
    ``Authorization``, which the hub refuses as a hub token (Notebook 7 could load no file)."""
    gina = await add_person(hub, "gina")
    assert (await start_and_wait(hub, gina.user))[-1]["ready"]

    async with httpx.AsyncClient(base_url=hub_url(hub), headers=gina.cookie_header) as client:
        page = await client.get("/user/gina/notebooks/any.ipynb")

    assert page.status_code == 200
    config = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)
    assert config is not None, page.text
    assert json.loads(config[1])["token"] == ""
    assert hub.servers.upstream("gina").token not in page.text
