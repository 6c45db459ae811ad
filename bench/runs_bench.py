"""Runs benchmark (issue 12), against a real hub with real workers and kernels.

Starts an embedded PostgreSQL and a gilhub hub in this process (isolation as the
hub chooses it here: under root, each user's system account in a sandbox), then
measures:

- **a run's overhead**: the same 10-cell notebook executed by ``papermill`` on the
  command line (a process of its own, as a person would run it) and as a gilhub
  run (``POST /hub/api/runs`` until its event stream says it completed), in
  alternating rounds; the overhead is the median of the per-round differences;
- **20 runs queued at once** (four users, five runs each, with the default
  limits): how many complete, and how long all of them take;
- **the hub's event-loop latency** while those 20 run: a task in the hub's loop
  asks to wake every 10 ms and records how late it wakes (p50, p99, max).

Run from a checkout: ``python bench/runs_bench.py [--rounds 5]`` (prints a table
and writes ``bench/results/runs.md``). Goals: overhead under 1 s, all 20 complete,
p99 loop latency under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nbformat
from nbformat.v4 import new_code_cell, new_notebook

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.report import load_average, machine, markdown_table, write_report  # noqa: E402
from gilhub.app import GilHub  # noqa: E402
from gilhub.auth.tokens import create_token  # noqa: E402
from gilhub.contents import query as contents  # noqa: E402
from gilhub.contents import roles  # noqa: E402
from gilhub.db.embedded import start_embedded  # noqa: E402

NOTEBOOK = "bench/ten_cells.ipynb"
QUEUED_USERS, RUNS_EACH = 4, 5
TICK = 0.010


def ten_cell_notebook() -> bytes:
    cells = [new_code_cell("n = 1", metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(f"x{i} = sum(range(1000)) * n\nprint(x{i})") for i in range(9)]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb).encode()


def papermill_directly(workdir: Path) -> float:
    """Seconds for ``papermill in out -p n 2`` in a process of its own."""
    source, target = workdir / "in.ipynb", workdir / "out.ipynb"
    source.write_bytes(ten_cell_notebook())
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(target), "-p", "n", "2",
         "--no-progress-bar", "-k", "python3"],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


async def finished(client: httpx.AsyncClient, run_id: int) -> dict:
    """The run once it has ended, followed over its event stream (as the run page does)."""
    model: dict = {}
    async with client.stream("GET", f"/hub/api/runs/{run_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                model = json.loads(line.removeprefix("data: "))
    return model


async def gilhub_run(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/hub/api/runs", json={"notebook": NOTEBOOK, "parameters": {"n": 2}}
    )
    response.raise_for_status()
    model = await finished(client, response.json()["id"])
    elapsed = time.perf_counter() - started
    if model["status"] != "completed":
        raise RuntimeError(f"the benchmark's run did not complete: {model}")
    return elapsed


async def loop_lateness(samples: list[float], stop: asyncio.Event) -> None:
    """How late this loop wakes a task that asks to sleep :data:`TICK` seconds."""
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(TICK)
        samples.append(time.perf_counter() - asked - TICK)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def user_client(app: GilHub, url: str, name: str) -> httpx.AsyncClient:
    user, _ = await app.accounts.create(name, "bench-password-1")
    role = await roles.ensure_user_role(app.db, name)
    async with app.db.begin() as conn:
        token = (await create_token(conn, user.id, note="bench")).token
        await contents.write_file(conn, role, NOTEBOOK, ten_cell_notebook())
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"token {token}"}, timeout=600)


async def measure(app: GilHub, rounds: int, workdir: Path) -> dict[str, object]:
    url = f"http://127.0.0.1:{app.bound_port}"
    clients = [await user_client(app, url, f"bench{number}") for number in range(QUEUED_USERS)]
    papermill_times, run_times = [], []
    await gilhub_run(clients[0])  # warm-up: the user's account, caches
    await asyncio.to_thread(papermill_directly, workdir)
    for round_number in range(rounds):
        order = [0, 1] if round_number % 2 == 0 else [1, 0]
        for which in order:
            if which == 0:
                papermill_times.append(await asyncio.to_thread(papermill_directly, workdir))
            else:
                run_times.append(await gilhub_run(clients[0]))
    overheads = [run - direct for run, direct in zip(run_times, papermill_times, strict=True)]

    lateness: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(loop_lateness(lateness, stop))
    started = time.perf_counter()
    responses = await asyncio.gather(
        *(
            client.post("/hub/api/runs", json={"notebook": NOTEBOOK, "parameters": {"n": 3}})
            for client in clients
            for _ in range(RUNS_EACH)
        )
    )
    owners = [client for client in clients for _ in range(RUNS_EACH)]
    ids = [(c, r.json()["id"]) for c, r in zip(owners, responses, strict=True)]
    models = await asyncio.gather(*(finished(client, run_id) for client, run_id in ids))
    all_done = time.perf_counter() - started
    stop.set()
    await ticker
    for client in clients:
        await client.aclose()
    return {
        "papermill": statistics.median(papermill_times),
        "run": statistics.median(run_times),
        "overhead": statistics.median(overheads),
        "completed": sum(model["status"] == "completed" for model in models),
        "queued": len(models),
        "all_done": all_done,
        "lateness_p50": percentile(lateness, 0.5),
        "lateness_p99": percentile(lateness, 0.99),
        "lateness_max": max(lateness),
        "max_runs": app.runs.max_runs,
        "max_runs_per_user": app.runs.max_runs_per_user,
    }


async def run_benchmark(data_dir: Path, rounds: int) -> tuple[dict[str, object], str]:
    database = await asyncio.to_thread(start_embedded, data_dir)
    app = GilHub()
    app.db_url, app.data_dir, app.ip, app.port = database.url, data_dir, "127.0.0.1", 0
    await app.start_hub()
    try:
        spawner = app.spawner_class(hub=app, user=None, parent=app)
        isolation = (await spawner.isolation_status()).describe()
        workdir = data_dir / "papermill"
        workdir.mkdir()
        return await measure(app, rounds, workdir), isolation
    finally:
        if app.servers is not None:
            app.servers.cleanup_servers = True
        await app.stop_hub()
        await asyncio.to_thread(database.stop)


def report(figures: dict[str, object], isolation: str, rounds: int) -> str:
    ms = lambda seconds: f"{float(seconds) * 1000:.0f}"  # noqa: E731
    queued = figures["queued"]
    rows = [
        ("papermill on the command line, 10 cells (median)", f"{ms(figures['papermill'])} ms", ""),
        ("gilhub run, POST to completed (median)", f"{ms(figures['run'])} ms", ""),
        ("a run's overhead (median of paired differences)", f"{ms(figures['overhead'])} ms",
         "< 1000 ms"),
        (f"{queued} runs queued at once: completed", str(figures["completed"]), f"all {queued}"),
        (f"{queued} runs queued at once: until all ended", f"{ms(figures['all_done'])} ms", ""),
        ("hub event-loop lateness meanwhile, p50 / p99 / max",
         f"{figures['lateness_p50'] * 1000:.1f} / {figures['lateness_p99'] * 1000:.1f} / "
         f"{figures['lateness_max'] * 1000:.1f} ms", "p99 < 20 ms"),
    ]  # fmt: skip
    return (
        "# Runs benchmark\n\n"
        f"`python bench/runs_bench.py --rounds {rounds}` on {machine()}, load average"
        f" {load_average()} at the end; isolation: {isolation}; "
        f"limits max_runs={figures['max_runs']}, max_runs_per_user="
        f"{figures['max_runs_per_user']}.\n\n"
        f"{markdown_table(('measurement', 'result', 'goal'), rows)}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gilhub-runs-bench-") as directory:
        figures, isolation = asyncio.run(run_benchmark(Path(directory), args.rounds))
    text = report(figures, isolation, args.rounds)
    if args.no_write:
        print(text)
    else:
        write_report("runs", text)


if __name__ == "__main__":
    main()
