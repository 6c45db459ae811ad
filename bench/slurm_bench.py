"""Slurm spawner at scale, simulated: 200 users' servers as jobs of a fake Slurm.

A real hub (embedded PostgreSQL in a temporary directory) whose SlurmSpawner submits to
the fake ``sbatch``/``squeue``/``scancel`` of ``tests/slurm/fake_slurm.py`` (one fake node
answers for every job's server). It measures the hub's REST API latency (``GET
/hub/api/users/NAME`` with the user's token, and the admin's ``GET /hub/api/users``, 10
clients at once, in a process of their own) first before any start, then with all 200
jobs running and watched, and counts ``squeue`` calls per polling interval meanwhile.

Run from a checkout: ``python bench/slurm_bench.py`` (prints a table and writes
``bench/results/slurm.md``). Goals (issue 14): with 200 users' jobs, one ``squeue`` call
per interval, and the hub's API p99 under 100 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from gilhub.app import GilHub  # noqa: E402
from tests.hub.servers_harness import Person, add_person, wait_for_state  # noqa: E402
from tests.slurm.fake_slurm import FakeSlurm, fake_slurm_config, stop_in_chunks  # noqa: E402

USERS = 200
INTERVAL = 2.0  # SlurmQueue.poll_interval, the default
ROUNDS = 3
REQUESTS_PER_ROUND = 400
CLIENTS = 10


async def client_requests(base: str, requests: list[tuple[str, str]]) -> list[float]:
    """Milliseconds of each (path, token) GET, made by CLIENTS clients at once."""
    latencies: list[float] = []
    pending = iter(requests)

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for path, token in pending:
                began = time.perf_counter()
                answer = await client.get(path, headers={"Authorization": f"token {token}"})
                latencies.append((time.perf_counter() - began) * 1000)
                answer.raise_for_status()

    await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
    return latencies


async def api_latencies(hub: GilHub, people: list[Person], admin: Person) -> list[float]:
    """REQUESTS_PER_ROUND API calls (a quarter of them the admin's user list), made from a
    process of their own so that the clients do not share the hub's event loop."""
    requests = [
        ("/hub/api/users", admin.token)
        if number % 4 == 0
        else (
            f"/hub/api/users/{people[number % len(people)].name}",
            people[number % len(people)].token,
        )
        for number in range(REQUESTS_PER_ROUND)
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", f"http://127.0.0.1:{hub.bound_port}",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate(json.dumps(requests).encode())
    return json.loads(output)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slurm-bench-") as temporary:
        fake = FakeSlurm(Path(temporary) / "fake-slurm")
        fake.start_node()
        hub = GilHub(config=fake_slurm_config(fake, INTERVAL))
        hub.data_dir = Path(temporary) / "hub"
        hub.ip, hub.port = "127.0.0.1", 0
        await hub.start_hub()
        try:
            admin = await add_person(hub, "benchadmin", admin=True)
            people = [await add_person(hub, f"bench{number}") for number in range(USERS)]
            await api_latencies(hub, people, admin)  # warm-up
            idle: list[float] = []
            for _ in range(ROUNDS):
                idle += await api_latencies(hub, people, admin)
            began = time.monotonic()
            for person in people:
                await hub.servers.start(person.user)
            for person in people:
                await wait_for_state(hub, person.name, "running", timeout=1800)
            started = time.monotonic()
            loaded: list[float] = []
            for _ in range(ROUNDS):
                loaded += await api_latencies(hub, people, admin)
            watched = time.monotonic()
            calls = fake.squeue_calls(started, watched)
            intervals = (watched - started) / INTERVAL
            await stop_in_chunks(hub, [person.user for person in people])
        finally:
            hub.servers.cleanup_servers = True
            try:
                await hub.stop_hub()
            finally:
                fake.stop_node()
    report = "\n".join(
        [
            "# Slurm spawner, 200 simulated jobs (bench/slurm_bench.py)",
            "",
            f"{platform.node()}, {platform.python_version()}, {time.strftime('%Y-%m-%d')};"
            f" {USERS} servers started in {started - began:.0f} s; load average at the end"
            f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
            "",
            "| measure | before the starts | with 200 jobs running | goal |",
            "| --- | --- | --- | --- |",
            f"| hub API p50 (ms) | {statistics.median(idle):.1f}"
            f" | {statistics.median(loaded):.1f} | |",
            f"| hub API p99 (ms) | {p99(idle):.1f} | {p99(loaded):.1f} | < 100 |",
            f"| squeue calls per {INTERVAL:g} s interval | 0 | {calls / intervals:.2f}"
            f" ({calls} in {watched - started:.0f} s) | 1 |",
            "",
        ]
    )
    print(report)
    results = REPOSITORY / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "slurm.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        requests = [tuple(request) for request in json.loads(sys.stdin.read())]
        print(json.dumps(asyncio.run(client_requests(sys.argv[2], requests))))
    else:
        asyncio.run(main())
