"""Benchmark: one jupyter_server reached directly, through gilhub, and through JupyterHub.

Run from the repository root (see bench/README.md)::

    python bench/hub_bench.py

Everything runs on this machine in one go: a plain ``jupyter_server`` (the reference, "direct"),
a ``gilhub`` hub that spawns the same server for a user and proxies to it, and JupyterHub 6
with configurable-http-proxy (from ``bench/node_modules``, ``npm install --prefix bench``)
spawning the same server through its ``SimpleLocalProcessSpawner``. The measurements run in
several alternating rounds; medians over the rounds are reported as ratios to direct in
``bench/results/hub.md`` and plotted in ``bench/results/hub.png``.

This is not a test: it asserts nothing, it reports what it measured next to the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import operator
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import websockets

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
USER = "bench"
SMALL_FILE = "small.bin"
BIG_FILE = "big.bin"
MIB = 1024 * 1024
# The plain file contents manager (streams /files/ downloads) for every system.
FILE_CONTENTS_MANAGER = "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kill_tree(proc: subprocess.Popen) -> None:
    """Terminate a process and every descendant (portable: psutil, no process groups)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(proc.pid)
        family = [*parent.children(recursive=True), parent]
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        _, alive = psutil.wait_procs(family, timeout=10)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
    proc.wait()


def start_process(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd=None):
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )


async def wait_for_http(url: str, headers: dict[str, str], proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(headers=headers) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited; see {log}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 400:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within 90 s; see {log}")


def server_args(root: Path) -> list[str]:
    """The single-user server options every deployment uses (same server, same config)."""
    args = [
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.contents_manager_class={FILE_CONTENTS_MANAGER}",
        "--ServerApp.open_browser=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    return args


# --------------------------------------------------------------------------- deployments


@dataclass
class Target:
    """Where one deployment serves the user's jupyter_server, and how to authenticate."""

    name: str
    server_url: str  # ends with "/"
    headers: dict[str, str]
    hub_pid: int | None = None  # the process whose memory the big download may grow

    @property
    def ws_url(self) -> str:
        return "ws" + self.server_url[len("http") :]


@dataclass
class Hub:
    """A hub with a JupyterHub-compatible REST API (gilhub or JupyterHub)."""

    name: str
    hub_url: str  # e.g. http://127.0.0.1:PORT/hub/api/
    public_url: str  # e.g. http://127.0.0.1:PORT/
    token: str
    pid: int  # the process the proxied bytes pass through
    process: subprocess.Popen

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def target(self) -> Target:
        return Target(self.name, f"{self.public_url}user/{USER}/", self.headers, self.pid)

    async def start_server(self, client: httpx.AsyncClient) -> float:
        """POST the start request and follow the progress stream; seconds until ready."""
        began = time.perf_counter()
        response = await client.post(f"{self.hub_url}users/{USER}/server")
        if response.status_code not in (201, 202):
            raise RuntimeError(
                f"{self.name}: start answered {response.status_code}: {response.text}"
            )
        url = f"{self.hub_url}users/{USER}/server/progress"
        async with client.stream("GET", url, timeout=120) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[len("data:") :])
                if event.get("failed"):
                    raise RuntimeError(f"{self.name}: spawn failed: {event}")
                if event.get("ready"):
                    return time.perf_counter() - began
        raise RuntimeError(f"{self.name}: progress stream ended before the server was ready")

    async def stop_server(self, client: httpx.AsyncClient) -> None:
        response = await client.delete(f"{self.hub_url}users/{USER}/server")
        if response.status_code not in (202, 204):
            raise RuntimeError(
                f"{self.name}: stop answered {response.status_code}: {response.text}"
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            model = (await client.get(f"{self.hub_url}users/{USER}")).json()
            if not model.get("servers") and not model.get("pending"):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name}: server did not stop within 60 s")


@contextlib.asynccontextmanager
async def direct_server(root: Path, work: Path) -> AsyncIterator[Target]:
    port, token = free_port(), secrets.token_hex(24)
    log = work / "direct-server.log"
    argv = [sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}"]
    argv += ["--ServerApp.ip=127.0.0.1", *server_args(root)]
    if gilhub_serverext_available():
        # gilhub enables its server extension (TCP_NODELAY on kernel WebSockets) in every user
        # server; the reference server gets the same configuration.
        argv.append("--ServerApp.jpserver_extensions=gilhub.serverext=True")
    proc = start_process(argv, log, env={"JUPYTER_TOKEN": token})
    try:
        url = f"http://127.0.0.1:{port}/"
        headers = {"Authorization": f"token {token}"}
        await wait_for_http(f"{url}api/status", headers, proc, log)
        yield Target("direct", url, headers)
    finally:
        kill_tree(proc)


def gilhub_serverext_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gilhub.serverext") is not None


JUPYTERHUB_CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{work}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{work}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{work}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "{work}/home-{{username}}"
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "bench",
    "services": ["bench"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
}}]
"""


@contextlib.asynccontextmanager
async def jupyterhub_process(root: Path, work: Path, extra_config: str = "") -> AsyncIterator[Hub]:
    """JupyterHub 6 + configurable-http-proxy in ``work/jupyterhub``, serving ``root``."""
    chp = BENCH_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
    if not chp.exists():
        raise SystemExit("configurable-http-proxy missing: npm install --prefix bench")
    work = work / "jupyterhub"
    work.mkdir(exist_ok=True)
    port, token = free_port(), secrets.token_hex(24)
    config = JUPYTERHUB_CONFIG.format(
        port=port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        chp=str(chp),
        work=work.as_posix(),
        args=server_args(root),
        token=token,
    )
    (work / "jupyterhub_config.py").write_text(config + extra_config)
    jupyterhub_bin = Path(sys.executable).with_name("jupyterhub")
    argv = [str(jupyterhub_bin), "-f", "jupyterhub_config.py"]
    async with hub_process("JupyterHub", argv, port, token, work, "hub/api/") as hub:
        yield hub


@contextlib.asynccontextmanager
async def jupyterhub(root: Path, work: Path) -> AsyncIterator[Hub]:
    async with jupyterhub_process(root, work) as hub:
        hub.pid = proxy_pid(hub.process)
        async with httpx.AsyncClient(headers=hub.headers) as client:
            response = await client.post(f"{hub.hub_url}users/{USER}")
            if response.status_code not in (201, 409):
                raise RuntimeError(f"JupyterHub: user creation: {response.status_code}")
        yield hub


@contextlib.asynccontextmanager
async def hub_process(
    name: str, argv: list[str], port: int, token: str, work: Path, health_path: str
) -> AsyncIterator[Hub]:
    """Run a hub's command in ``work`` until the context ends; ready once health answers."""
    log = work / f"{name}.log"
    process = start_process(argv, log, cwd=work)
    public_url = f"http://127.0.0.1:{port}/"
    hub = Hub(name, f"{public_url}hub/api/", public_url, token, process.pid, process)
    try:
        await wait_for_http(public_url + health_path, {}, process, log)
        yield hub
    finally:
        kill_tree(process)


def proxy_pid(jupyterhub_process: subprocess.Popen) -> int:
    """configurable-http-proxy's pid: JupyterHub's bytes pass through it, not the hub."""
    for child in psutil.Process(jupyterhub_process.pid).children(recursive=True):
        if any("configurable-http-proxy" in part for part in child.cmdline()):
            return child.pid
    raise RuntimeError("JupyterHub started no configurable-http-proxy")


GILHUB_CONFIG = """\
c = get_config()  # noqa
c.Spawner.args = {args!r}
# the same server as direct access and JupyterHub's spawner run: in the hub's account, on
# the files make_root wrote, at the same CPU priority (a comparison of proxies, not of
# isolation or of scheduling: with the load generator on the same two CPUs, a server niced
# below the hub would lose CPU to wrk that a remote browser would not take)
c.LocalProcessSpawner.isolation = "none"
c.LocalProcessSpawner.allow_root = True
c.Spawner.nice = 0
"""


def run_gilhub_cli(argv: list[str], work: Path, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("gilhub")), *argv, f"--data-dir={work}"],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gilhub {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextlib.asynccontextmanager
async def gilhub(root: Path, work: Path) -> AsyncIterator[Hub]:
    work = work / "gilhub"
    # gilhub runs the server in its per-user scratch directory, where make_root put the files.
    assert root == gilhub_root(work.parent)
    config = GILHUB_CONFIG.format(args=server_args(root))
    (work / "gilhub_config.py").write_text(config)
    run_gilhub_cli(
        ["user", "add", USER, "--password-stdin", "--create"], work, stdin=secrets.token_hex(16)
    )
    token = run_gilhub_cli(["token", USER], work).strip().splitlines()[-1].strip()
    port = free_port()
    argv = [str(Path(sys.executable).with_name("gilhub")), "--ip=127.0.0.1", f"--port={port}"]
    argv += [f"--data-dir={work}", f"--config={work / 'gilhub_config.py'}"]
    async with hub_process("gilhub", argv, port, token, work, "hub/health") as hub:
        yield hub


# --------------------------------------------------------------------------- measurements


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def http_throughput(target: Target, requests: int, concurrency: int) -> float:
    """Small GETs (a 100 KB static file) with ``concurrency`` keep-alive connections; req/s."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    url = f"{target.server_url}files/{SMALL_FILE}"
    remaining = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in remaining:
            response = await client.get(url)
            response.raise_for_status()

    async with httpx.AsyncClient(headers=target.headers, limits=limits) as client:
        await client.get(url)
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return requests / (time.perf_counter() - began)


async def http_latency(target: Target, requests: int) -> list[float]:
    """Sequential small GETs (``/api/status``) on one keep-alive connection; seconds each."""
    url = f"{target.server_url}api/status"
    timings = []
    async with httpx.AsyncClient(headers=target.headers) as client:
        for _ in range(20):
            (await client.get(url)).raise_for_status()
        for _ in range(requests):
            began = time.perf_counter()
            response = await client.get(url)
            timings.append(time.perf_counter() - began)
            response.raise_for_status()
    return timings


def execute_request(code: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": USER,
            "session": uuid.uuid4().hex,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


async def execute(ws, code: str) -> None:
    request = execute_request(code)
    await ws.send(json.dumps(request))
    while True:
        reply = json.loads(await ws.recv())
        parent = reply.get("parent_header", {}).get("msg_id")
        if reply.get("msg_type") == "execute_reply" and parent == request["header"]["msg_id"]:
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"kernel error: {reply['content']}")
            return


async def kernel_round_trips(target: Target, executions: int) -> list[float]:
    """Execute ``1`` over the kernel WebSocket and wait for its execute_reply; seconds each."""
    async with httpx.AsyncClient(headers=target.headers, timeout=60) as client:
        response = await client.post(f"{target.server_url}api/kernels", json={"name": "python3"})
        response.raise_for_status()
        kernel = response.json()["id"]
        try:
            url = f"{target.ws_url}api/kernels/{kernel}/channels"
            async with websockets.connect(
                url, additional_headers=target.headers, max_size=None
            ) as ws:
                for _ in range(3):
                    await execute(ws, "1")
                timings = []
                for _ in range(executions):
                    began = time.perf_counter()
                    await execute(ws, "1")
                    timings.append(time.perf_counter() - began)
                return timings
        finally:
            await client.delete(f"{target.server_url}api/kernels/{kernel}")


async def big_download(target: Target) -> tuple[float, float | None]:
    """Stream the big file; returns (MiB/s, growth in MiB of the hub's RSS or None)."""
    hub = psutil.Process(target.hub_pid) if target.hub_pid else None
    baseline = hub.memory_info().rss if hub else 0
    peak = baseline
    received = 0

    async def sample_memory() -> None:
        nonlocal peak
        while True:
            peak = max(peak, hub.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample_memory()) if hub else None
    try:
        async with httpx.AsyncClient(headers=target.headers, timeout=300) as client:
            began = time.perf_counter()
            async with client.stream("GET", f"{target.server_url}files/{BIG_FILE}") as stream:
                stream.raise_for_status()
                async for chunk in stream.aiter_raw(MIB):
                    received += len(chunk)
            elapsed = time.perf_counter() - began
    finally:
        if sampler:
            sampler.cancel()
    growth = (peak - baseline) / MIB if hub else None
    return received / MIB / elapsed, growth


# --------------------------------------------------------------------------- orchestration


@dataclass
class Settings:
    rounds: int
    requests: int
    concurrency: int
    latency_requests: int
    executions: int
    spawns: int
    big_mib: int
    systems: list[str]


def gilhub_root(work: Path) -> Path:
    """The server root every system shares: gilhub's scratch directory for the bench user."""
    return work / "gilhub" / "scratch" / USER


def make_root(work: Path, big_mib: int) -> Path:
    root = gilhub_root(work)
    root.mkdir(parents=True)
    (root / SMALL_FILE).write_bytes(os.urandom(100 * 1024))
    block = os.urandom(MIB)
    with (root / BIG_FILE).open("wb") as out:
        for _ in range(big_mib):
            out.write(block)
    return root


Samples = dict[str, dict[str, list[float]]]  # metric -> system -> one value per round


def record(samples: Samples, metric: str, system: str, value: float | None) -> None:
    if value is not None:
        samples.setdefault(metric, {}).setdefault(system, []).append(value)


async def measure_round(samples: Samples, targets: list[Target], settings: Settings) -> None:
    for target in targets:
        print(f"  {target.name}: HTTP", flush=True)
        throughput = await http_throughput(target, settings.requests, settings.concurrency)
        record(samples, "throughput", target.name, throughput)
        latency = await http_latency(target, settings.latency_requests)
        record(samples, "latency_p50", target.name, percentile(latency, 0.5) * 1000)
        record(samples, "latency_p99", target.name, percentile(latency, 0.99) * 1000)
        print(f"  {target.name}: kernel", flush=True)
        trips = await kernel_round_trips(target, settings.executions)
        record(samples, "kernel_p50", target.name, percentile(trips, 0.5) * 1000)
        print(f"  {target.name}: {settings.big_mib} MiB download", flush=True)
        speed, growth = await big_download(target)
        record(samples, "download", target.name, speed)
        record(samples, "download_rss", target.name, growth)


async def measure_spawns(samples: Samples, hubs: list[Hub], spawns: int) -> None:
    """Alternate start-to-ready measurements; every hub's server is left running."""
    clients = {hub.name: httpx.AsyncClient(headers=hub.headers, timeout=120) for hub in hubs}
    try:
        for attempt in range(spawns):
            for hub in hubs:
                client = clients[hub.name]
                seconds = await hub.start_server(client)
                print(f"  {hub.name}: start to ready {seconds:.2f} s", flush=True)
                record(samples, "spawn", hub.name, seconds)
                if attempt < spawns - 1:
                    await hub.stop_server(client)
    finally:
        for client in clients.values():
            await client.aclose()


async def run(settings: Settings, work: Path) -> Samples:
    root = make_root(work, settings.big_mib)
    deployments: dict[str, Callable] = {"gilhub": gilhub, "JupyterHub": jupyterhub}
    samples: Samples = {}
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(direct_server(root, work))
        hubs = [
            await stack.enter_async_context(deployments[name](root, work))
            for name in settings.systems
        ]
        print("start to ready", flush=True)
        await measure_spawns(samples, hubs, settings.spawns)
        targets = [direct, *(hub.target() for hub in hubs)]
        for number in range(settings.rounds):
            print(f"round {number + 1}/{settings.rounds}", flush=True)
            rotation = number % len(targets)
            await measure_round(samples, targets[rotation:] + targets[:rotation], settings)
    return samples


# --------------------------------------------------------------------------- report

METRICS = [  # key, label, unit
    ("throughput", "HTTP throughput, 100 KB GETs", "req/s"),
    ("latency_p50", "latency p50, /api/status", "ms"),
    ("latency_p99", "latency p99, /api/status", "ms"),
    ("kernel_p50", "kernel round trip p50", "ms"),
    ("spawn", "start to ready p50", "s"),
    ("download", "big download", "MiB/s"),
    ("download_rss", "proxy RSS growth during download", "MiB"),
]


def medians(samples: Samples) -> dict[str, dict[str, float]]:
    return {
        metric: {system: statistics.median(values) for system, values in by_system.items()}
        for metric, by_system in samples.items()
    }


def paired(
    samples: Samples, metric: str, system: str, reference: str, combine: Callable
) -> float | None:
    """Median over rounds of ``combine(system's value, reference's value)`` in the same round.

    Each round measures every system back to back, so pairing values by round cancels most
    of the drift in a shared machine's load between rounds.
    """
    ours = samples.get(metric, {}).get(system)
    theirs = samples.get(metric, {}).get(reference)
    if not ours or not theirs:
        return None
    return statistics.median(combine(a, b) for a, b in zip(ours, theirs, strict=True))


def goal_checks(samples: Samples, med: dict[str, dict[str, float]]) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each goal that the measured systems allow checking."""
    checks = []
    ratio = paired(samples, "throughput", "gilhub", "direct", operator.truediv)
    if ratio is not None:
        checks.append(("throughput ≥ 0.95 × direct", f"{ratio:.2f} ×", ratio >= 0.95))
    ratio = paired(samples, "throughput", "gilhub", "JupyterHub", operator.truediv)
    if ratio is not None:
        checks.append(("throughput above JupyterHub's", f"{ratio:.2f} × JupyterHub's", ratio > 1))
    added = paired(samples, "latency_p99", "gilhub", "direct", operator.sub)
    if added is not None:
        checks.append(("p99 latency added ≤ 2 ms", f"{added:+.2f} ms", added <= 2))
    value = med.get("kernel_p50", {}).get("gilhub")
    if value is not None:
        checks.append(("kernel round trip p50 ≤ 8 ms", f"{value:.1f} ms", value <= 8))
    value = med.get("spawn", {}).get("gilhub")
    if value is not None:
        checks.append(("start to ready p50 ≤ 2.5 s", f"{value:.2f} s", value <= 2.5))
    ratio = paired(samples, "download", "gilhub", "direct", operator.truediv)
    if ratio is not None:
        checks.append(("big download ≥ 0.8 × direct", f"{ratio:.2f} ×", ratio >= 0.8))
    growth = med.get("download_rss", {}).get("gilhub")
    if growth is not None:
        megabytes = growth * MIB / 1e6
        checks.append(("hub memory growth < 50 MB", f"{megabytes:.1f} MB", megabytes < 50))
    return checks


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if unit in ("req/s", "MiB/s") else f"{value:.2f}"


def write_markdown(samples: Samples, settings: Settings, command: str, path: Path) -> None:
    med = medians(samples)
    systems = ["direct", *settings.systems]
    header = (
        "| metric | unit | "
        + " | ".join(systems)
        + " | "
        + " | ".join(f"{s} / direct" for s in settings.systems)
        + " |"
    )
    lines = [header, "|" + " --- |" * (2 + len(systems) + len(settings.systems))]
    for key, label, unit in METRICS:
        values = med.get(key, {})
        cells = [format_value(values.get(s), unit) for s in systems]
        ratios = [paired(samples, key, s, "direct", operator.truediv) for s in settings.systems]
        ratios = ["–" if ratio is None else f"{ratio:.2f}" for ratio in ratios]
        lines.append(f"| {label} | {unit} | " + " | ".join(cells + ratios) + " |")
    goals = ["| goal | measured | met |", "| --- | --- | --- |"]
    goals += [
        f"| {goal} | {measured} | {'yes' if met else '**no**'} |"
        for goal, measured, met in goal_checks(samples, med)
    ]
    cpu = platform.processor() or platform.machine()
    text = f"""\
    # gilhub vs JupyterHub: proxy and spawn benchmark

    Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on
    {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, Python
    {platform.python_version()}, with

        {command}

    Medians over {settings.rounds} alternating rounds ({settings.spawns} spawns per hub for start
    to ready); the ratios (and the added p99) are medians of the per-round ratios (differences),
    each round measuring every system back to back.
    Every system serves the same `jupyter_server` configuration (plain file contents
    manager, same root directory); "direct" is that server reached on its own port with its
    token. Throughput: {settings.requests} GETs of a 100 KB file with {settings.concurrency}
    keep-alive connections (httpx client on the same machine). Latency: {settings.latency_requests}
    sequential `GET api/status`. Kernel round trip: {settings.executions} × execute `1` over the
    kernel WebSocket until its `execute_reply`. Big download: {settings.big_mib} MiB file streamed
    from `files/`; hub memory is the hub process's peak RSS minus its RSS before the download.

    {{table}}

    {{goals}}

    ![plot](hub.png)
    """
    text = textwrap.dedent(text).format(table="\n".join(lines), goals="\n".join(goals))
    path.write_text(text)


def write_plot(med, settings: Settings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = ["direct", *settings.systems]
    colors = {"direct": "#888888", "gilhub": "#2a7ab0", "JupyterHub": "#e07b39"}
    shown = [m for m in METRICS if m[0] in med and m[0] != "download_rss"]
    figure, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.4))
    for axis, (key, label, unit) in zip(axes, shown, strict=True):
        names = [s for s in systems if s in med[key]]
        axis.bar(names, [med[key][s] for s in names], color=[colors[s] for s in names])
        axis.set_title(label, fontsize=8)
        axis.set_ylabel(unit, fontsize=8)
        axis.tick_params(labelsize=7)
    figure.suptitle(
        "jupyter_server direct vs through gilhub vs through JupyterHub (medians)", fontsize=9
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def parse_args() -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--spawns", type=int, default=5)
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big download")
    parser.add_argument(
        "--systems", default="gilhub,JupyterHub", help="comma-separated hubs to compare with direct"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    settings = Settings(
        args.rounds,
        args.requests,
        args.concurrency,
        args.latency_requests,
        args.executions,
        args.spawns,
        args.big_mib,
        [s for s in args.systems.split(",") if s],
    )
    return settings, args


def main() -> None:
    settings, args = parse_args()
    command = "python bench/hub_bench.py " + " ".join(sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="gilhub-bench-"))
    try:
        samples = asyncio.run(run(settings, work))
    except BaseException:
        print(f"logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    med = medians(samples)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "hub.json").write_text(
        json.dumps({"samples": samples, "medians": med}, indent=1)
    )
    write_markdown(samples, settings, command.strip(), args.output / "hub.md")
    write_plot(med, settings, args.output / "hub.png")
    for goal, measured, met in goal_checks(samples, med):
        print(f"{'met' if met else 'NOT met':8} {goal}: {measured}")
    print(f"wrote {args.output / 'hub.md'}")


if __name__ == "__main__":
    main()
