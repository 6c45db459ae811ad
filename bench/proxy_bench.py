"""Benchmark: small-request throughput of gilhub's proxy against direct access, with wrk.

Run from the repository root (``wrk`` from Debian: ``apt-get install wrk``)::

    python bench/proxy_bench.py                          # direct and gilhub, 7 rounds
    python bench/proxy_bench.py --systems gilhub JupyterHub   # and JupyterHub + CHP
    python bench/proxy_bench.py --rounds 0 --profile hub.txt  # py-spy's view of the hub

A focused part of ``hub_bench.py``: the same jupyter_server reached directly and through
each hub (started exactly as ``hub_bench.py`` starts them), loaded by ``wrk`` (a C load
generator: unlike an in-process Python client it is not the bottleneck) with 100 KB GETs
over keep-alive connections, the same way for every system: one wrk thread and
``--connections`` connections (16: enough to keep the single-threaded server busy when
reached directly, and as many as the hub keeps idle per server). Rounds alternate between
the systems, the first one rotating, so that all see the same machine; each round's line
carries the load average, and the medians and ratios to direct are printed. Nothing is
written: the README's Performance section records the figures.

This is not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hub_bench import (  # noqa: E402
    SMALL_FILE,
    Target,
    direct_server,
    gilhub,
    jupyterhub,
    make_root,
)

DEPLOYMENTS = {"gilhub": gilhub, "JupyterHub": jupyterhub}


def listening_pid(url: str) -> int:
    """The process listening on ``url``'s port (the user's jupyter_server)."""
    port = urlsplit(url).port
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return connection.pid
    raise RuntimeError(f"nothing listens on {url}")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def server_pid(target: Target) -> int:
    """The user's jupyter_server behind ``target``: listening on its port when reached
    directly, else the hub's child process that listens."""
    if target.hub_pid is None:
        return listening_pid(target.server_url)
    hub = psutil.Process(target.hub_pid)
    family = hub.children(recursive=True) or hub.parent().children(recursive=True)
    for process in family:
        if process.pid != hub.pid and any(
            c.status == psutil.CONN_LISTEN for c in process.net_connections(kind="tcp")
        ):
            return process.pid
    raise RuntimeError(f"no user server found under {target.name}'s process")


def measure(target: Target, server_pid: int, seconds: int, connections: int) -> Run:
    """One wrk run, and the CPU the hub (if any) and the server spent per request."""
    pids = {"server": server_pid, "hub": target.hub_pid}
    before = {role: cpu_seconds(pid) for role, pid in pids.items() if pid}
    rate = wrk_requests_per_second(target, seconds, connections)
    requests = rate * seconds
    cpu = {
        role: (cpu_seconds(pids[role]) - used) / requests * 1000 for role, used in before.items()
    }
    return Run(rate, cpu.get("hub"), cpu["server"])


@dataclass
class Run:
    rate: float  # requests per second
    hub_cpu_ms: float | None  # hub CPU time per request (the proxy's own cost)
    server_cpu_ms: float  # the user server's CPU time per request


def wrk_requests_per_second(target: Target, seconds: int, connections: int) -> float:
    """One wrk run against the target's 100 KB file; requests per second."""
    headers = [arg for name, value in target.headers.items() for arg in ("-H", f"{name}: {value}")]
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers,
         f"{target.server_url}files/{SMALL_FILE}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    if "Non-2xx" in done.stdout:
        raise RuntimeError(f"{target.name} answered errors:\n{done.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))


async def run(args: argparse.Namespace, work: Path) -> dict[str, list[Run]]:
    root = make_root(work, big_mib=1)
    results: dict[str, list[Run]] = {}
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(direct_server(root, work))
        targets = [direct]
        for name in args.systems:
            hub = await stack.enter_async_context(DEPLOYMENTS[name](root, work))
            async with httpx.AsyncClient(headers=hub.headers, timeout=120) as client:
                await hub.start_server(client)
            targets.append(hub.target())
        server_pids = {target.name: server_pid(target) for target in targets}
        for target in targets:  # warm up: connections, imports, caches
            await asyncio.to_thread(wrk_requests_per_second, target, 2, args.connections)
        for number in range(args.rounds):
            rotation = number % len(targets)
            for target in targets[rotation:] + targets[:rotation]:
                result = await asyncio.to_thread(
                    measure, target, server_pids[target.name], args.seconds, args.connections
                )
                results.setdefault(target.name, []).append(result)
                load = " ".join(f"{average:.1f}" for average in os.getloadavg())
                print(f"round {number + 1} {target.name}: {result} load {load}", flush=True)
        if args.profile:
            await profile_hub(targets[1], args)
    return results


async def profile_hub(target: Target, args: argparse.Namespace) -> None:
    """Sample the hub's stacks with py-spy during one wrk run (collapsed stacks to a file)."""
    assert target.hub_pid is not None
    seconds = max(args.seconds, 10)
    py_spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(target.hub_pid), "--duration", str(seconds),
         "--rate", "250", "--format", "raw", "--output", str(args.profile)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    rate = await asyncio.to_thread(wrk_requests_per_second, target, seconds, args.connections)
    await asyncio.to_thread(py_spy.wait)
    print(f"profiled {target.name} at {rate:.0f} req/s: {args.profile}", flush=True)


def report(results: dict[str, list[Run]]) -> None:
    direct = results.get("direct", [])
    if not direct:
        return
    print("\n| system | req/s | ratio to direct | proxy CPU ms/request | server CPU ms/request |")
    print("| --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        ratio = statistics.median(
            run.rate / base.rate for run, base in zip(runs, direct, strict=True)
        )
        hub_cpu = [run.hub_cpu_ms for run in runs if run.hub_cpu_ms is not None]
        proxy_cpu = f"{statistics.median(hub_cpu):.3f}" if hub_cpu else "–"
        print(
            f"| {name} | {statistics.median(run.rate for run in runs):.0f} | {ratio:.3f} "
            f"| {proxy_cpu} | {statistics.median(run.server_cpu_ms for run in runs):.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["gilhub"], choices=list(DEPLOYMENTS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--profile", type=Path, help="py-spy the first hub into this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="gilhub-proxy-bench-") as work:
        report(asyncio.run(run(args, Path(work))))


if __name__ == "__main__":
    main()
