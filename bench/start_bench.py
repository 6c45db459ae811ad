"""Benchmark: what one user-server start costs, and how soon a restarted hub listens.

Run from the repository root (see bench/README.md)::

    python bench/start_bench.py            # 5 starts, then a hub restart with 3 servers
    python bench/start_bench.py --starts 9

It starts an embedded PostgreSQL in a temporary directory and gilhub's own hub in this
process, then starts and stops one user's server ``--starts`` times. For each start it
reports the CPU time (user + system) the server process has used when the hub first finds
it ready, and the wall time from "start" to ready; medians are printed. Then it leaves
``--servers`` servers running, stops the hub and starts a new one on the same database,
and reports how long a new ``gilhub`` process takes to listen (PostgreSQL is already up,
as after a hub restart), and how long a new hub in this process takes to listen and to
re-adopt every server.

This is not a test: it asserts nothing, it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gilhub.accounts import create_account  # noqa: E402
from gilhub.app import GilHub  # noqa: E402
from gilhub.db.embedded import start_embedded  # noqa: E402
from gilhub.servers import ServerState  # noqa: E402
from gilhub.users import User  # noqa: E402


async def started_hub(db_url, data_dir: Path) -> GilHub:
    hub = GilHub()
    hub.db_url, hub.data_dir, hub.ip, hub.port = db_url, data_dir, "127.0.0.1", 0
    hub.log_level = 30
    await hub.start_hub()
    return hub


async def wait_until(hub: GilHub, name: str, state: ServerState) -> None:
    while hub.servers.status(name).state != state:
        await asyncio.sleep(0.01)


def server_process(hub: GilHub, name: str) -> psutil.Process:
    # A benchmark may look inside the local spawner; the hub itself never does.
    return psutil.Process(hub.servers._servers[name].spawner.get_state()["pid"])


async def one_start(hub: GilHub, user: User) -> tuple[float, float]:
    """(CPU seconds of the server process until ready, wall seconds until ready)."""
    began = time.perf_counter()
    await hub.servers.start(user)
    async for event in hub.servers.progress(user.name):
        if event["failed"]:
            raise RuntimeError(event["message"])
    wall = time.perf_counter() - began
    cpu = tree_cpu(server_process(hub, user.name))
    await hub.servers.stop(user)
    return cpu, wall


def tree_cpu(process: psutil.Process) -> float:
    """CPU seconds of ``process`` and its descendants (a sandbox's server runs under bwrap),
    with the children each waited for (e.g. node for yarn)."""
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


async def cold_start(db_url, data_dir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds from ``gilhub`` being run to its "listening" line; then it stops."""
    config = data_dir / "gilhub_config.py"  # the URL holds a password: not on a command line
    config.write_text(f"c.GilHub.db_url = {db_url.render_as_string(hide_password=False)!r}\n")
    began = time.perf_counter()
    hub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gilhub", f"--data-dir={data_dir}", "--port=0",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async for line in hub.stderr:
            if b"is listening on" in line:
                times = psutil.Process(hub.pid).cpu_times()
                return time.perf_counter() - began, times.user + times.system
        raise RuntimeError("the hub exited before it listened")
    finally:
        hub.send_signal(signal.SIGINT)
        await hub.wait()
        config.unlink()


async def measure(starts: int, servers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gilhub-start-bench-") as tmp:
        database = start_embedded(Path(tmp) / "pg")
        try:
            hub = await started_hub(database.url, Path(tmp) / "hub")
            async with hub.db.begin() as conn:
                people = [await create_account(conn, f"bench{i}") for i in range(servers)]
            results = [await one_start(hub, people[0]) for _ in range(starts)]
            cpu = statistics.median(r[0] for r in results)
            wall = statistics.median(r[1] for r in results)
            print(f"server start, median of {starts}: CPU {cpu:.2f} s, start to ready {wall:.2f} s")
            print(
                "  each start (CPU s / wall s):", ", ".join(f"{c:.2f}/{w:.2f}" for c, w in results)
            )

            for person in people:
                await hub.servers.start(person)
            for person in people:
                await wait_until(hub, person.name, ServerState.RUNNING)
            await hub.servers.shutdown()
            hub.servers = None
            await hub.stop_hub()

            listening, cpu = await cold_start(database.url, Path(tmp) / "hub")
            print(
                "hub restart as a new process (PostgreSQL up):"
                f" listening after {listening:.2f} s, {cpu:.2f} s of CPU"
            )

            began = time.perf_counter()
            hub = await started_hub(database.url, Path(tmp) / "hub")
            listening = time.perf_counter() - began
            for person in people:
                await wait_until(hub, person.name, ServerState.RUNNING)
            adopted = time.perf_counter() - began
            print(
                f"hub restart in this process with {servers} running servers:"
                f" listening after {listening:.2f} s,"
                f" all re-adopted after {adopted:.2f} s"
            )
            hub.servers.cleanup_servers = True
            await hub.stop_hub()
        finally:
            database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="starts to measure (default 5)")
    parser.add_argument("--servers", type=int, default=3, help="servers across the restart")
    args = parser.parse_args()
    asyncio.run(measure(args.starts, args.servers))


if __name__ == "__main__":
    main()
