"""Benchmark: small-request throughput of gilhub's proxy against direct access, with wrk.

Run from the repository root (``wrk`` from Debian: ``apt-get install wrk``)::

    python bench/proxy_bench.py                          # direct and gilhub, 7 rounds
    python bench/proxy_bench.py --systems gilhub JupyterHub   # and JupyterHub + CHP

A focused part of ``hub_bench.py``: the same jupyter_server reached directly and through
each hub (started exactly as ``hub_bench.py`` starts them), loaded by ``wrk`` (a C load
generator: unlike an in-process Python client it is not the bottleneck) with 100 KB GETs
over keep-alive connections. Rounds alternate between the systems, the first one rotating,
so that all see the same machine; the medians and ratios to direct are printed. Nothing is
written: the README's Performance section records the figures.

This is not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

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


async def run(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    root = make_root(work, big_mib=1)
    results: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(direct_server(root, work))
        targets = [direct]
        for name in args.systems:
            hub = await stack.enter_async_context(DEPLOYMENTS[name](root, work))
            async with httpx.AsyncClient(headers=hub.headers, timeout=120) as client:
                await hub.start_server(client)
            targets.append(hub.target())
        for target in targets:  # warm up: connections, imports, caches
            await asyncio.to_thread(wrk_requests_per_second, target, 2, args.connections)
        for number in range(args.rounds):
            rotation = number % len(targets)
            for target in targets[rotation:] + targets[:rotation]:
                rate = await asyncio.to_thread(
                    wrk_requests_per_second, target, args.seconds, args.connections
                )
                results.setdefault(target.name, []).append(rate)
                print(f"round {number + 1} {target.name}: {rate:.0f} req/s", flush=True)
    return results


def report(results: dict[str, list[float]]) -> None:
    direct = results["direct"]
    print("\n| system | median req/s | ratio to direct (median of per-round ratios) |")
    print("| --- | --- | --- |")
    for name, rates in results.items():
        ratios = [rate / base for rate, base in zip(rates, direct, strict=True)]
        print(f"| {name} | {statistics.median(rates):.0f} | {statistics.median(ratios):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["gilhub"], choices=list(DEPLOYMENTS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="gilhub-proxy-bench-") as work:
        report(asyncio.run(run(args, Path(work))))


if __name__ == "__main__":
    main()
