"""Slurm spawner at scale, simulated: 200 users' servers as jobs of a fake Slurm.

A real hub (embedded PostgreSQL in a temporary directory) whose SlurmSpawner submits to
the fake ``sbatch``/``squeue``/``scancel`` of ``tests/slurm/fake_slurm.py`` (one fake node
answers for every job's server). It measures the hub's REST API latency as a person sees
it: a probe in a process of its own (so that its work is not counted as the hub's) asks
every 50 ms, one request at a time, for a user (``GET /hub/api/users/NAME`` with the user's
token) or, one time in four, for the admin's list of all users. It probes before any start,
during the 200 starts (sbatch, address reports, readiness checks), and with all 200 jobs
running and watched, and meanwhile measures how late the hub's event loop runs a 10 ms
timer and counts ``squeue`` calls per polling interval.

Run from a checkout at normal priority: ``python bench/slurm_bench.py`` (prints a table
and writes ``bench/results/slurm.md``). Goals (issue 14): with 200 users' jobs, one
``squeue`` call per interval, and the hub's API p99 under 100 ms.
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
PROBE_INTERVAL = 0.05
IDLE_SECONDS = 15.0
WATCHED_SECONDS = 30.0
LAG_TIMER = 0.01


async def probe(base: str, requests: list[tuple[str, str]]) -> list[float]:
    """Milliseconds of each (path, token) GET, one every PROBE_INTERVAL, in turn, until a
    (second) line arrives on standard input."""
    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        number = 0
        while not stop.done():
            path, token = requests[number % len(requests)]
            number += 1
            began = time.perf_counter()
            answer = await client.get(path, headers={"Authorization": f"token {token}"})
            latencies.append((time.perf_counter() - began) * 1000)
            answer.raise_for_status()
            await asyncio.sleep(PROBE_INTERVAL)
    return latencies


class Probe:
    """The probe's process, started for one phase: :meth:`stop` ends it with its figures."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, hub: GilHub, people: list[Person], admin: Person) -> Probe:
        requests = [
            ("/hub/api/users", admin.token)
            if number % 4 == 0
            else (f"/hub/api/users/{person.name}", person.token)
            for number, person in enumerate(people)
        ]
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--probe", f"http://127.0.0.1:{hub.bound_port}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None  # the tokens go by standard input, never argv
        process.stdin.write(json.dumps(requests).encode() + b"\n")
        await process.stdin.drain()
        return cls(process)

    async def stop(self) -> list[float]:
        output, _ = await self.process.communicate(b"stop\n")
        return json.loads(output)


class LoopLag:
    """How late the hub's event loop runs a LAG_TIMER timer (this process runs the hub)."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.task = asyncio.ensure_future(self._measure())

    async def _measure(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(LAG_TIMER)
            self.lateness.append((time.perf_counter() - began - LAG_TIMER) * 1000)

    def take(self) -> list[float]:
        taken, self.lateness = self.lateness, []
        return taken


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


class Phase:
    def __init__(self, name: str, api: list[float], lag: list[float], seconds: float) -> None:
        self.name, self.api, self.lag, self.seconds = name, api, lag, seconds


async def measured(name: str, hub, people, admin, lag: LoopLag, work) -> Phase:
    """Probe the API and the loop while ``work()`` runs."""
    running = await Probe.start(hub, people, admin)
    lag.take()
    began = time.monotonic()
    await work()
    seconds = time.monotonic() - began
    return Phase(name, await running.stop(), lag.take(), seconds)


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
            lag = LoopLag()

            async def start_all() -> None:
                for person in people:
                    await hub.servers.start(person.user)
                for person in people:
                    await wait_for_state(hub, person.name, "running", timeout=1800)

            phases = [
                await measured(
                    "before the starts", hub, people, admin, lag,
                    lambda: asyncio.sleep(IDLE_SECONDS),
                ),
                await measured("during the 200 starts", hub, people, admin, lag, start_all),
            ]  # fmt: skip
            watched_from = time.monotonic()
            phases.append(
                await measured(
                    "with 200 jobs running", hub, people, admin, lag,
                    lambda: asyncio.sleep(WATCHED_SECONDS),
                )
            )  # fmt: skip
            watched = time.monotonic() - watched_from
            calls = fake.squeue_calls(watched_from, watched_from + watched)
            lag.task.cancel()
            await stop_in_chunks(hub, [person.user for person in people])
        finally:
            hub.servers.cleanup_servers = True
            try:
                await hub.stop_hub()
            finally:
                fake.stop_node()
    print(report(phases, calls, watched))


def report(phases: list[Phase], calls: int, watched: float) -> str:
    def row(label: str, figure) -> str:
        return f"| {label} | " + " | ".join(figure(phase) for phase in phases) + " |"

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    now = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    text = "\n".join(
        [
            "# Slurm spawner, 200 simulated jobs (bench/slurm_bench.py)",
            "",
            f"{platform.node()}, {platform.python_version()}, {now} UTC;"
            f" {os.cpu_count()} CPUs, load average at the end {load} (1, 5, 15 min);"
            f" the 200 starts took {phases[1].seconds:.0f} s",
            "",
            "| measure | " + " | ".join(phase.name for phase in phases) + " |",
            "| --- | " + " | ".join("---" for _ in phases) + " |",
            row("hub API requests probed", lambda phase: str(len(phase.api))),
            row("hub API p50 (ms)", lambda phase: f"{statistics.median(phase.api):.1f}"),
            row("hub API p99 (ms), goal < 100", lambda phase: f"{p99(phase.api):.1f}"),
            row("hub loop lateness p99 (ms)", lambda phase: f"{p99(phase.lag):.1f}"),
            row("hub loop lateness max (ms)", lambda phase: f"{max(phase.lag):.1f}"),
            f"| squeue calls per {INTERVAL:g} s interval, goal 1 | | |"
            f" {calls / (watched / INTERVAL):.2f} ({calls} in {watched:.0f} s) |",
            "",
        ]
    )
    results = REPOSITORY / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "slurm.md").write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        requests = [tuple(request) for request in json.loads(sys.stdin.readline())]
        print(json.dumps(asyncio.run(probe(sys.argv[2], requests))))
    else:
        asyncio.run(main())
