"""Login throttling that slows attackers without locking owners out, and argon2 in a
bounded pool: against a real hub (in-process, and as a separate process for memory)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.accounts import create_account
from gilhub.auth.passwords import HASHING_NICENESS, PasswordHasher
from tests.hub.conftest import USER_PASSWORD, RunningHub, running_hub, write_config
from tests.hub.ldap_server import free_port
from tests.hub.servers_harness import server_python
from tests.hub.test_auth import login_form

ATTACKER, OWNER = "127.0.0.2", "127.0.0.1"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
async def hub(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator:
    async with running_hub(database_url, tmp_path_factory.mktemp("hub")) as running:
        yield running


def client_from(hub: RunningHub, address: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.x address is loopback)."""
    return hub.client(transport=httpx.AsyncHTTPTransport(local_address=address))


async def forget_failures(hub: RunningHub) -> None:
    async with hub.app.db.begin() as conn:
        await conn.execute(text("DELETE FROM login_failures"))


async def let_time_pass(hub: RunningHub, seconds: int) -> None:
    """Age the recorded failures, as if ``seconds`` had passed."""
    async with hub.app.db.begin() as conn:
        await conn.execute(
            text("UPDATE login_failures SET failed_at = failed_at - make_interval(secs => :s)"),
            {"s": seconds},
        )


async def test_an_attackers_failures_do_not_stop_the_owner_from_another_address(
    hub: RunningHub,
) -> None:
    owner = await hub.add_user()
    attacker = client_from(hub, ATTACKER)
    codes = [
        (await login_form(attacker, hub, owner.name, "guessed-password")).status_code
        for _ in range(hub.app.login_max_failures + 3)
    ]
    assert codes[: hub.app.login_max_failures] == [403] * hub.app.login_max_failures
    assert set(codes[hub.app.login_max_failures :]) == {429}
    paused = await login_form(attacker, hub, owner.name, USER_PASSWORD)
    assert paused.status_code == 429  # the attacker's address stays paused for this name
    mine = await login_form(client_from(hub, OWNER), hub, owner.name, USER_PASSWORD)
    assert mine.status_code == 303
    await forget_failures(hub)


async def test_logins_pause_longer_and_longer_but_are_never_locked(hub: RunningHub) -> None:
    user = await hub.add_user()
    client = hub.client()
    for _ in range(hub.app.login_max_failures):
        assert (await login_form(client, hub, user.name, "wrong-password")).status_code == 403
    first = await login_form(client, hub, user.name, USER_PASSWORD)
    assert first.status_code == 429
    first_pause = int(first.headers["Retry-After"])
    assert 0 < first_pause <= hub.app.login_failure_pause
    await let_time_pass(hub, int(hub.app.login_failure_pause) + 1)
    assert (await login_form(client, hub, user.name, "wrong-password")).status_code == 403
    second = await login_form(client, hub, user.name, USER_PASSWORD)
    assert second.status_code == 429
    assert first_pause < int(second.headers["Retry-After"]) <= 2 * hub.app.login_failure_pause
    await let_time_pass(hub, 2 * int(hub.app.login_failure_pause) + 1)
    assert (await login_form(client, hub, user.name, USER_PASSWORD)).status_code == 303
    await forget_failures(hub)


async def test_a_burst_of_wrong_logins_verifies_at_most_the_limit(hub: RunningHub) -> None:
    victim = await hub.add_user()
    limit = hub.app.login_max_failures
    verified_before = hub.app.accounts.hasher.verifications
    responses = await asyncio.gather(
        *(login_form(hub.client(), hub, victim.name, f"guess-{n}") for n in range(25))
    )
    verified = hub.app.accounts.hasher.verifications - verified_before
    assert verified <= limit
    codes = sorted(response.status_code for response in responses)
    assert codes == [403] * limit + [429] * (25 - limit)
    await forget_failures(hub)


@contextlib.contextmanager
def hub_process(directory: Path, port: int) -> Iterator[subprocess.Popen]:
    """``gilhub`` as its own process (its database URL in gilhub_config.py)."""
    process = subprocess.Popen(
        # as root, users' accounts must be able to run the hub's Python
        [server_python(), "-m", "gilhub", f"--port={port}", f"--data-dir={directory / 'data'}"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_password_hashing_yields_the_cpu_to_the_event_loop() -> None:
    """Hashing threads run below the hub's own priority (Linux: a nice value per thread)."""

    def this_threads_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    hasher = PasswordHasher(workers=1)
    try:
        own_thread = this_threads_niceness()
        worker = await hasher._run(this_threads_niceness)
        assert worker == min(19, own_thread + HASHING_NICENESS) > own_thread
        assert await hasher.verify(await hasher.hash("a password"), "a password")
    finally:
        hasher.close()


async def test_fifty_concurrent_logins_keep_hub_memory_growth_under_200_mib(
    database_url: URL, engine: AsyncEngine, tmp_path: Path
) -> None:
    """hubtraf-like: fifty people log in through the form at the same moment."""
    hasher = PasswordHasher(workers=1)
    password_hash = await hasher.hash(USER_PASSWORD)
    names = [f"burst{n}" for n in range(50)]
    async with engine.begin() as conn:
        for name in names:
            await create_account(conn, name, password_hash=password_hash)
    write_config(tmp_path, database_url)
    port = free_port()
    with hub_process(tmp_path, port) as process:
        hub = RunningHub(app=None, url=f"http://127.0.0.1:{port}")  # type: ignore[arg-type]
        async with asyncio.timeout(120):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await hub.client().get("/hub/health")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        await hub.login(names[0], USER_PASSWORD)  # warm: the pool's threads exist
        measured = psutil.Process(process.pid)
        baseline = peak = measured.memory_info().rss
        burst = asyncio.gather(*(hub.login(name, USER_PASSWORD) for name in names))
        while not burst.done():
            peak = max(peak, measured.memory_info().rss)
            await asyncio.sleep(0.01)
        await burst
        await hub.close_clients()
    growth = (peak - baseline) / MiB
    print(f"hub RSS {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB during 50 logins")
    assert growth < 200
