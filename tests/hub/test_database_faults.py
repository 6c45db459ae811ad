"""The hub when its PostgreSQL fails: 503s, never 500s, one log line, recovery by itself.

Everything is a real process: ``gilhub`` with its embedded PostgreSQL (see
``hub_process.py``), alice's ``jupyter_server`` started through the hub, HTTP
and a kernel WebSocket through the hub's proxy. PostgreSQL is killed with
SIGKILL; the hub's supervisor starts it again. No duration is asserted:
loops wait for conditions, bounded only by generous timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import psutil
import pytest
import websockets

from tests.hub.hub_process import HubProcess, postgres_held_down, postgres_processes
from tests.hub.servers_harness import (
    TEST_ACCOUNT_PREFIX,
    execute,
    server_python,
    start_server,
    wait_until_gone,
)

pytestmark = pytest.mark.timeout(600)

HUB_UNAVAILABLE = "The database is not answering"
STORAGE_UNAVAILABLE = "the notebook database is unavailable"
OUTAGE_STARTS = "The database is unavailable"
OUTAGE_ENDS = "The database is available again"


@dataclass
class FaultyHub:
    hub: HubProcess
    alice: httpx.AsyncClient  # alice's API token
    admin: httpx.AsyncClient  # the administrator's API token


@pytest.fixture(scope="module")
async def faulty(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultyHub]:
    data_dir = tmp_path_factory.mktemp("faulty-hub")
    # the default isolation: as root (as the tests run), a system account in a sandbox
    (data_dir / "gilhub_config.py").write_text(
        f"c.LocalProcessSpawner.account_prefix = {TEST_ACCOUNT_PREFIX!r}\n"
        f"c.Spawner.cmd = [{server_python()!r}, '-m', 'gilhub.singleuser']\n"
    )
    hub = HubProcess(data_dir)
    await hub.start()
    clients: list[httpx.AsyncClient] = []
    try:
        await hub.cli("user", "add", "alice", "--password-stdin", stdin="alice-password-1")
        for name in ("alice", "admin"):
            token = (await hub.cli("token", name)).strip()
            headers = {"Authorization": f"token {token}"}
            clients.append(httpx.AsyncClient(base_url=hub.url, timeout=60, headers=headers))
        faulty = FaultyHub(hub, *clients)
        await start_server(faulty.alice, "alice")
        yield faulty
    finally:
        if clients:  # the hub leaves user servers running when it stops: stop alice's first
            await clients[0].delete("/hub/api/users/alice/server")
            await wait_until_gone(clients[0], "alice")
        for client in clients:
            await client.aclose()
        await hub.stop()


async def wait_for_health(client: httpx.AsyncClient, status: int) -> None:
    async with asyncio.timeout(180):
        while (await client.get("/hub/health")).status_code != status:
            await asyncio.sleep(0.2)


def assert_unavailable(response: httpx.Response, message: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["message"].startswith(message), response.text


@dataclass
class SaveLoop:
    """Saves files through the proxy, one after another, and records every answer."""

    client: httpx.AsyncClient
    acknowledged: dict[str, str] = field(default_factory=dict)
    answers: list[httpx.Response] = field(default_factory=list)
    numbers: itertools.count = field(default_factory=itertools.count)

    async def save_once(self) -> httpx.Response:
        number = next(self.numbers)
        path, content = f"save-{number}.txt", f"save number {number}"
        body = {"type": "file", "format": "text", "content": content}
        response = await self.client.put(f"/user/alice/api/contents/{path}", json=body)
        self.answers.append(response)
        if response.is_success:
            self.acknowledged[path] = content
        return response

    async def run_until(self, condition) -> None:
        async with asyncio.timeout(240):
            while not condition():
                await self.save_once()
                await asyncio.sleep(0.05)

    def seen_unavailable(self, message: str) -> bool:
        return any(
            r.status_code == 503 and r.json()["message"].startswith(message) for r in self.answers
        )


async def test_postmaster_killed_during_saves_gives_503s_never_500s_and_loses_nothing(
    faulty: FaultyHub,
) -> None:
    loop = SaveLoop(faulty.alice)
    await loop.run_until(lambda: len(loop.acknowledged) >= 5)
    server_log = faulty.hub.data_dir / "logs" / "alice.log"
    since = len(server_log.read_text(encoding="utf-8"))
    old_postmaster = faulty.hub.postmaster()
    saving = asyncio.create_task(loop.run_until(lambda: False))
    try:
        async with postgres_held_down(faulty.hub):
            # while it is down: the storage answers 503, and (once the hub's cache of
            # the token has expired) so does the proxy's login check
            async with asyncio.timeout(240):
                while not (
                    loop.seen_unavailable(STORAGE_UNAVAILABLE)
                    and loop.seen_unavailable(HUB_UNAVAILABLE)
                ):
                    await asyncio.sleep(0.1)
            acknowledged_when_released = len(loop.acknowledged)
    finally:
        saving.cancel()
    # the supervisor restarts PostgreSQL; saves work again without restarting the hub
    await loop.run_until(lambda: len(loop.acknowledged) >= acknowledged_when_released + 5)

    statuses = {response.status_code for response in loop.answers}
    assert statuses <= {200, 201, 503}, statuses
    for response in loop.answers:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0
    new_postmaster = faulty.hub.postmaster()
    assert new_postmaster is not None and new_postmaster.pid != old_postmaster.pid
    for path, content in loop.acknowledged.items():
        model = await faulty.alice.get(f"/user/alice/api/contents/{path}")
        assert model.status_code == 200, (path, model.text)
        assert model.json()["content"] == content
    # alice's server logged the outage once, not a traceback per failed save
    logged = server_log.read_text(encoding="utf-8")[since:]
    assert logged.count("The notebook database is unavailable") == 1, logged
    assert logged.count("The notebook database is available again") == 1, logged
    assert "Traceback" not in logged, logged
    assert f"{STORAGE_UNAVAILABLE}:" not in logged  # no per-request repeats of the error


async def test_an_open_kernel_websocket_keeps_working_through_an_outage(
    faulty: FaultyHub,
) -> None:
    kernel = await faulty.alice.post("/user/alice/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    url = f"{faulty.hub.url.replace('http', 'ws', 1)}/user/alice/api/kernels/{kernel_id}/channels"
    session = uuid.uuid4().hex
    try:
        async with websockets.connect(url, additional_headers=faulty.alice.headers) as ws:
            assert (await execute(ws, "1 + 1", session))[0] == "2"
            async with postgres_held_down(faulty.hub):
                await wait_for_health(faulty.alice, 503)
                assert (await execute(ws, "2 + 2", session))[0] == "4"
            await wait_for_health(faulty.alice, 200)
            assert (await execute(ws, "3 + 3", session))[0] == "6"
    finally:
        await faulty.alice.delete(f"/user/alice/api/kernels/{kernel_id}")


async def test_hub_pages_and_api_answer_503_and_the_outage_is_logged_once(
    faulty: FaultyHub,
) -> None:
    since = faulty.hub.log_size()
    async with postgres_held_down(faulty.hub):
        for _ in range(5):
            page = await faulty.admin.get("/hub/admin")
            assert page.status_code == 503
            assert int(page.headers["Retry-After"]) > 0
            assert HUB_UNAVAILABLE in page.text and "Traceback" not in page.text
            assert_unavailable(await faulty.admin.get("/hub/api/users"), HUB_UNAVAILABLE)
            assert_unavailable(await faulty.admin.get("/hub/health"), HUB_UNAVAILABLE)
    await wait_for_health(faulty.admin, 200)
    assert (await faulty.admin.get("/hub/api/users")).status_code == 200

    log = faulty.hub.log_text(since)
    assert log.count(OUTAGE_STARTS) == 1, log
    assert log.count(OUTAGE_ENDS) == 1, log
    assert "Traceback" not in log, log


def server_processes(hub: HubProcess, name: str) -> list[psutil.Process]:
    """NAME's server tree (its sandbox included), among the hub's descendants."""
    assert hub.process is not None
    found = []
    for process in psutil.Process(hub.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if process.environ().get("GILHUB_USER") == name:
                found.append(process)
    return found


async def wait_for_answer(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET ``path`` until it answers something other than 503 (the outage's answer)."""
    async with asyncio.timeout(120):
        while (response := await client.get(path)).status_code == 503:
            await asyncio.sleep(0.2)
    return response


async def test_a_sandboxed_server_keeps_its_database_when_postgres_is_restarted(
    faulty: FaultyHub,
) -> None:
    """The sandbox binds the directory of the database's socket, not the socket, so the
    socket of the PostgreSQL the supervisor starts again is the server's too."""
    server = server_processes(faulty.hub, "alice")
    assert server and server[0].name() == "bwrap", [p.cmdline() for p in server]
    saved = await faulty.alice.put(
        "/user/alice/api/contents/kept.txt",
        json={"type": "file", "format": "text", "content": "kept"},
    )
    assert saved.status_code in (200, 201), saved.text
    old_postmaster = faulty.hub.postmaster()
    old_postmaster.kill()
    async with asyncio.timeout(180):
        while (new := faulty.hub.postmaster()) is None or new.pid == old_postmaster.pid:
            await asyncio.sleep(0.2)
    await wait_for_health(faulty.alice, 200)

    read = await wait_for_answer(faulty.alice, "/user/alice/api/contents/kept.txt")
    assert read.status_code == 200, read.text
    assert read.json()["content"] == "kept"
    assert server_processes(faulty.hub, "alice") == server  # the same server, not restarted


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
async def test_a_killed_hub_restarted_then_stopped_leaves_no_postgres_behind(
    tmp_path_factory: pytest.TempPathFactory, stop_signal: int
) -> None:
    hub = HubProcess(tmp_path_factory.mktemp("killed-hub"))
    await hub.start()
    hub.send(signal.SIGKILL)
    await hub.wait()
    left_running = hub.postmaster()
    assert left_running is not None  # the crash's leftover, which the next hub adopts

    await hub.start()
    try:
        assert hub.postmaster() == left_running
        processes = postgres_processes(hub.pgdata)
        assert len(processes) > 1  # the postmaster, its workers and the hub's backends
    finally:
        await hub.stop(stop_signal)
    assert hub.process.returncode == 0
    gone, alive = psutil.wait_procs(processes, timeout=60)
    assert alive == [], alive
    assert postgres_processes(hub.pgdata) == []
