"""Benchmark: N people at once log in, start their server, run code in a kernel, and stop.

Run from the repository root (see bench/README.md)::

    npm install --prefix bench      # configurable-http-proxy, for JupyterHub
    python -m bench.load_bench      # N = 10, 20, 50 against gilhub and JupyterHub 6

hubtraf's flow, for gilhub and for JupyterHub 6 with configurable-http-proxy and its local
process spawner, one after the other at each N (the order alternating): every simulated person
logs in through the login form, starts their server (REST API, following the progress event
stream), creates a kernel, executes ``1`` over the kernel WebSocket, deletes the kernel and
stops the server. Meanwhile a probe asks the hub's REST API for a user every 50 ms. Each hub
starts once on a fresh database and serves every N with new people.

Reported per hub and N: how many people completed the flow, start-to-ready p50 and p95, the
probe's p50 and p99 while the starts were under way (the probe runs in a process of its
own, ``bench/api_probe.py``), the hub's peak resident memory and the CPU time the hub spent
on the wave per person (JupyterHub: hub plus proxy; a figure the machine's load does not
move much, unlike latencies). Results: ``bench/results/load.md`` and ``load.png``.

This is not a test: it asserts nothing and reports what it measured, next to the goals of
issue 10 (50 of 50 succeed; API p99 under 100 ms while 20 servers start; gilhub ahead of
JupyterHub at every N).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import websockets

from bench.hub_bench import (
    RESULTS_DIR,
    Hub,
    execute,
    free_port,
    hub_process,
    jupyterhub_process,
    percentile,
    proxy_pid,
    run_gilhub_cli,
)
from bench.report import load_average, machine, markdown_table, write_report

PASSWORD = "load-bench-" + secrets.token_hex(8)
XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')
FLOW_TIMEOUT = 600


@dataclass
class Outcome:
    ok: bool
    start_to_ready: float | None = None
    error: str = ""


@dataclass
class Result:
    system: str
    people: int
    outcomes: list[Outcome]
    probe: list[float]
    peak_rss: float
    started_rss: float
    hub_cpu: float  # CPU seconds the hub (JupyterHub: hub and proxy) spent on the wave

    @property
    def succeeded(self) -> int:
        return sum(outcome.ok for outcome in self.outcomes)

    def start_percentile(self, fraction: float) -> float | None:
        times = [o.start_to_ready for o in self.outcomes if o.start_to_ready is not None]
        return percentile(times, fraction) if times else None

    def probe_percentile(self, fraction: float) -> float | None:
        return percentile(self.probe, fraction) * 1000 if self.probe else None

    def errors(self) -> list[str]:
        return sorted({o.error for o in self.outcomes if o.error})


@dataclass
class LoadHub:
    """A running hub, its admin token and the processes whose memory counts."""

    hub: Hub
    pids: list[int] = field(default_factory=list)

    def rss(self) -> float:
        total = 0
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total / 2**20

    def cpu(self) -> float:
        """CPU seconds (user and system) spent so far by the hub's own processes."""
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total


# --------------------------------------------------------------------------- the hubs


GILHUB_LOAD_CONFIG = """\
c = get_config()  # noqa
c.GilHub.login_max_failures_per_address = 100000
c.LocalProcessSpawner.removed_user_account = "delete"  # a root hub's system accounts
"""

JUPYTERHUB_LOAD_CONFIG = """
c.DummyAuthenticator.password = {password!r}
c.JupyterHub.load_roles[0]["scopes"] += ["tokens", "admin:servers"]
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
"""


@contextlib.asynccontextmanager
async def gilhub_hub(work: Path) -> AsyncIterator[LoadHub]:
    work = work / "gilhub"
    work.mkdir()
    (work / "gilhub_config.py").write_text(GILHUB_LOAD_CONFIG)
    run_gilhub_cli(
        ["user", "add", "loadadmin", "--admin", "--password-stdin", "--create"], work, PASSWORD
    )
    token = run_gilhub_cli(["token", "loadadmin"], work).strip().splitlines()[-1].strip()
    port = free_port()
    argv = [str(Path(sys.executable).with_name("gilhub")), "--ip=127.0.0.1", f"--port={port}"]
    argv += [f"--data-dir={work}", f"--config={work / 'gilhub_config.py'}"]
    async with hub_process("gilhub", argv, port, token, work, "hub/health") as hub:
        yield LoadHub(hub, [hub.process.pid])


@contextlib.asynccontextmanager
async def jupyterhub_hub(work: Path) -> AsyncIterator[LoadHub]:
    root = work / "jupyterhub-notebooks"
    root.mkdir()
    extra = JUPYTERHUB_LOAD_CONFIG.format(password=PASSWORD)
    async with jupyterhub_process(root, work, extra) as hub:
        yield LoadHub(hub, [hub.process.pid, proxy_pid(hub.process)])


HUBS = {"gilhub": gilhub_hub, "JupyterHub": jupyterhub_hub}


# --------------------------------------------------------------------------- one person


async def create_person(admin: httpx.AsyncClient, hub: Hub, name: str) -> str:
    """The person's account (with the common password) and an API token of theirs."""
    body = {"password": PASSWORD} if hub.name == "gilhub" else {}
    response = await admin.post(f"{hub.hub_url}users/{name}", json=body)
    if response.status_code not in (201, 409):
        raise RuntimeError(f"{hub.name}: creating {name}: {response.status_code} {response.text}")
    response = await admin.post(f"{hub.hub_url}users/{name}/tokens", json={"note": "load"})
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{hub.name}: token for {name}: {response.status_code} {response.text}")
    return response.json()["token"]


async def log_in(client: httpx.AsyncClient, hub: Hub, name: str) -> None:
    page = await client.get(f"{hub.public_url}hub/login")
    match = XSRF_FIELD.search(page.text)
    form = {"username": name, "password": PASSWORD, **({"_xsrf": match[1]} if match else {})}
    response = await client.post(f"{hub.public_url}hub/login", data=form)
    if response.status_code not in (302, 303):  # a form POST is answered with 303
        raise RuntimeError(f"login answered {response.status_code}")


async def start_server(client: httpx.AsyncClient, hub: Hub, name: str) -> float:
    began = time.perf_counter()
    response = await client.post(f"{hub.hub_url}users/{name}/server")
    if response.status_code not in (201, 202):
        raise RuntimeError(f"start answered {response.status_code}: {response.text[:200]}")
    url = f"{hub.hub_url}users/{name}/server/progress"
    async with client.stream("GET", url, timeout=FLOW_TIMEOUT) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                if event.get("failed"):
                    raise RuntimeError(f"start failed: {event.get('message')}")
                if event.get("ready"):
                    return time.perf_counter() - began
    raise RuntimeError("the progress stream ended before the server was ready")


async def run_code(client: httpx.AsyncClient, hub: Hub, name: str, token: str) -> None:
    server = f"{hub.public_url}user/{name}/"
    response = await client.post(f"{server}api/kernels", json={"name": "python3"})
    response.raise_for_status()
    kernel = response.json()["id"]
    url = "ws" + server[len("http") :] + f"api/kernels/{kernel}/channels"
    headers = {"Authorization": f"token {token}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await execute(ws, "1")
    await client.delete(f"{server}api/kernels/{kernel}")


async def stop_server(client: httpx.AsyncClient, hub: Hub, name: str) -> None:
    response = await client.delete(f"{hub.hub_url}users/{name}/server")
    if response.status_code not in (202, 204):
        raise RuntimeError(f"stop answered {response.status_code}")
    async with asyncio.timeout(120):
        while True:
            model = (await client.get(f"{hub.hub_url}users/{name}")).json()
            if not model.get("servers") and not model.get("pending"):
                return
            await asyncio.sleep(0.2)


class StartsUnderWay:
    """Counts the starts not yet over (ready or failed); ``over`` is set when none is left."""

    def __init__(self, starts: int) -> None:
        self.left = starts
        self.over = asyncio.Event()

    def one_over(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.over.set()


async def person_flow(hub: Hub, name: str, token: str, starts: StartsUnderWay) -> Outcome:
    outcome = Outcome(ok=False)
    start_over = False
    try:
        async with asyncio.timeout(FLOW_TIMEOUT):
            async with httpx.AsyncClient(timeout=FLOW_TIMEOUT) as browser:
                await log_in(browser, hub, name)
            headers = {"Authorization": f"token {token}"}
            async with httpx.AsyncClient(headers=headers, timeout=FLOW_TIMEOUT) as client:
                outcome.start_to_ready = await start_server(client, hub, name)
                start_over = True
                starts.one_over()
                await run_code(client, hub, name, token)
                await stop_server(client, hub, name)
        outcome.ok = True
    except Exception as error:  # a benchmark reports every failure, whatever its kind
        outcome.error = f"{type(error).__name__}: {error}"[:200]
    finally:
        if not start_over:
            starts.one_over()
    return outcome


# --------------------------------------------------------------------------- one wave


async def probe_api(hub: Hub, until: asyncio.Event) -> list[float]:
    """Latency of ``GET users/loadprobe`` every 50 ms until ``until`` is set, measured by
    ``bench/api_probe.py`` in a process of its own (not on this busy event loop)."""
    environment = {**os.environ, "PROBE_URL": f"{hub.hub_url}users/loadprobe"}
    environment["PROBE_TOKEN"] = hub.token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.api_probe",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=environment,
        cwd=Path(__file__).resolve().parent.parent,
    )
    await until.wait()
    output, _ = await process.communicate(b"")
    return json.loads(output)


async def sample_memory(hub: LoadHub, until: asyncio.Event) -> float:
    peak = hub.rss()
    while not until.is_set():
        peak = max(peak, hub.rss())
        await asyncio.sleep(0.1)
    return peak


async def wave(hub: LoadHub, people: int, tag: str) -> Result:
    """``people`` people at once through the whole flow."""
    names = [f"{tag}p{number}" for number in range(people)]
    async with httpx.AsyncClient(headers=hub.hub.headers, timeout=60) as admin:
        await create_person(admin, hub.hub, "loadprobe")
        tokens = [await create_person(admin, hub.hub, name) for name in names]
    started_rss, started_cpu = hub.rss(), hub.cpu()
    starts = StartsUnderWay(people)
    flows_done = asyncio.Event()
    watchers = (
        asyncio.create_task(probe_api(hub.hub, starts.over)),
        asyncio.create_task(sample_memory(hub, flows_done)),
    )
    outcomes = await asyncio.gather(
        *(
            person_flow(hub.hub, name, token, starts)
            for name, token in zip(names, tokens, strict=True)
        )
    )
    flows_done.set()
    probe, peak = await asyncio.gather(*watchers)
    if hub.hub.name == "gilhub":  # removing them removes the system accounts a root hub made
        async with httpx.AsyncClient(headers=hub.hub.headers, timeout=120) as admin:
            for name in names:
                await admin.delete(f"{hub.hub.hub_url}users/{name}")
    hub_cpu = hub.cpu() - started_cpu
    return Result(hub.hub.name, people, list(outcomes), probe, peak, started_rss, hub_cpu)


async def run(systems: list[str], sizes: list[int], work: Path) -> list[Result]:
    results = []
    async with contextlib.AsyncExitStack() as stack:
        hubs = {name: await stack.enter_async_context(HUBS[name](work)) for name in systems}
        for index, people in enumerate(sizes):
            order = systems if index % 2 == 0 else systems[::-1]
            for name in order:
                print(f"{name}: {people} people at once …", flush=True)
                result = await wave(hubs[name], people, f"n{people}{uuid.uuid4().hex[:4]}")
                print(
                    f"  {result.succeeded}/{people} ok, start p50 "
                    f"{result.start_percentile(0.5)}, API p99 {result.probe_percentile(0.99)} ms",
                    flush=True,
                )
                results.append(result)
                await asyncio.sleep(5)  # let the machine settle between waves
    return results


# --------------------------------------------------------------------------- reporting


def cell(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def goals(results: list[Result]) -> list[tuple[str, str, bool]]:
    ours = {r.people: r for r in results if r.system == "gilhub"}
    theirs = {r.people: r for r in results if r.system == "JupyterHub"}
    checks = []
    if 50 in ours:
        checks.append(("50 of 50 succeed", f"{ours[50].succeeded} of 50", ours[50].succeeded == 50))
    if 20 in ours and ours[20].probe:
        p99 = ours[20].probe_percentile(0.99)
        checks.append(("API p99 < 100 ms while 20 start", f"{p99:.0f} ms", p99 < 100))
    for people in sorted(set(ours) & set(theirs)):
        a, b = ours[people], theirs[people]
        a50, b50 = a.start_percentile(0.5), b.start_percentile(0.5)
        # more people through the whole flow; as many: sooner ready
        faster = b50 is None or (a50 is not None and a50 <= b50)
        ahead = a.succeeded > b.succeeded or (a.succeeded == b.succeeded and faster)
        measured = f"{a.succeeded} vs {b.succeeded} ok; p50 {cell(a50)} vs {cell(b50)} s"
        checks.append((f"ahead of JupyterHub at N={people}", measured, ahead))
    return checks


def write_markdown(results: list[Result], command: str, directory: Path) -> None:
    head = (
        "hub",
        "N",
        "succeeded",
        "start→ready p50 (s)",
        "p95 (s)",
        "API p50 (ms)",
        "API p99 (ms)",
        "peak memory (MiB)",
        "hub CPU per person (ms)",
    )
    rows = [
        (
            r.system,
            str(r.people),
            str(r.succeeded),
            cell(r.start_percentile(0.5)),
            cell(r.start_percentile(0.95)),
            cell(r.probe_percentile(0.5)),
            cell(r.probe_percentile(0.99)),
            f"{r.peak_rss:.0f}",
            f"{1000 * r.hub_cpu / r.people:.0f}",
        )
        for r in sorted(results, key=lambda r: (r.people, r.system))
    ]
    checks = [(g, m, "yes" if ok else "**no**") for g, m, ok in goals(results)]
    failures = [f"- {r.system} N={r.people}: {error}" for r in results for error in r.errors()[:3]]
    now = datetime.datetime.now(datetime.timezone.utc)
    text = "\n".join(
        [
            "# Many people at once: gilhub vs JupyterHub 6",
            "",
            f"Measured {now:%Y-%m-%d %H:%M} UTC on {machine()},"
            f" load average {load_average()} at the end, with",
            "",
            f"    {command}",
            "",
            markdown_table(head, rows),
            "",
            markdown_table(("goal", "measured", "met"), checks),
            "",
            *(["Failures seen:", "", *failures, ""] if failures else []),
            "![plot](load.png)",
            "",
        ]
    )
    write_report("load", text, directory)


def write_plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"gilhub": "#2a7ab0", "JupyterHub": "#e07b39"}
    panels = [
        ("succeeded", lambda r: r.succeeded),
        ("start→ready p50 (s)", lambda r: r.start_percentile(0.5) or 0),
        ("API p99 during starts (ms)", lambda r: r.probe_percentile(0.99) or 0),
        ("hub peak memory (MiB)", lambda r: r.peak_rss),
    ]
    sizes = sorted({r.people for r in results})
    figure, axes = plt.subplots(1, len(panels), figsize=(13, 3.4))
    for axis, (title, value) in zip(axes, panels, strict=True):
        for offset, system in enumerate(colors):
            chosen = {r.people: r for r in results if r.system == system}
            xs = [i + 0.38 * offset for i, n in enumerate(sizes) if n in chosen]
            ys = [value(chosen[n]) for n in sizes if n in chosen]
            axis.bar(xs, ys, width=0.36, color=colors[system], label=system)
        axis.set_xticks([i + 0.19 for i in range(len(sizes))], [f"N={n}" for n in sizes])
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=8)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,20,50", help="comma-separated numbers of people")
    parser.add_argument("--systems", default="gilhub,JupyterHub")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    systems = [s for s in args.systems.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="gilhub-load-"))
    try:
        results = asyncio.run(run(systems, sizes, work))
    except BaseException:
        print(f"logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    args.output.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.load_bench " + " ".join(sys.argv[1:])
    write_markdown(results, command.strip(), args.output)
    write_plot(results, args.output / "load.png")
    for goal, measured, met in goals(results):
        print(f"{'met' if met else 'NOT met':8} {goal}: {measured}")
    print(f"wrote {args.output / 'load.md'}")


if __name__ == "__main__":
    main()
