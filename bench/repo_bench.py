"""Shared-repository benchmark (issue 4), against a real hub over HTTP.

Starts an embedded PostgreSQL and a gilhub hub in this process, then measures
through the REST API and the pages, as a client sees them:

- push of a 1 MB notebook (a new version each time: parse, strip, hash, store,
  search text, and the origin written back into the user's copy);
- pull of a 1 MB notebook into the user's storage (alternating versions, so
  every pull really writes);
- search over 10,000 entries holding 100,000 versions (bulk-loaded with SQL,
  content generated inside the database), then again once every entry's text is
  longer than 20,000 characters (each hit shown with a ``ts_headline`` snippet);
- history of an entry with 1,000 versions: the API (100 and all 1,000 versions)
  and the entry page (HTML, newest 100).

Run from a checkout: ``python bench/repo_bench.py`` (prints a table and writes
``bench/results/repo.md``; ``--search-only`` skips the pushes, pulls and history).
Goals: push and pull under 50 ms, search under 100 ms, history page under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import nbformat
import orjson
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from sqlalchemy import text

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.report import RESULTS_DIR, load_average, machine, markdown_table, write_report  # noqa: E402
from gilhub.app import GilHub  # noqa: E402
from gilhub.auth.tokens import create_token  # noqa: E402
from gilhub.contents import query as contents  # noqa: E402
from gilhub.db.embedded import start_embedded  # noqa: E402

T = TypeVar("T")
ENTRIES = 10_000
VERSIONS = 100_000
HISTORY_VERSIONS = 1_000
REPEATS = 30
LONG_BODY_CHARS = 20_000

# Words for the generated cells: a few rare ones so searches have selective hits.
_BULK_LOAD = """
WITH words AS (
    SELECT ARRAY['plasma','probe','density','langmuir','spectrum','fit','sweep','calibration',
                 'electron','temperature','ion','current','voltage','noise','filter','signal',
                 'baseline','peak','laser','thomson','interferometer','magnetic','field',
                 'coil','discharge','pressure','argon','helium','hydrogen','tokamak'] AS w
), made AS (
    INSERT INTO repository.entries (path, kind, author, tags, head, contributors, messages, body)
    SELECT format('group%s/project%s/analysis%s.ipynb', n % 20, n % 200, n),
           'notebook',
           'user' || (n % 25),
           ARRAY[(SELECT w[1 + n % 30] FROM words), (SELECT w[1 + (n * 7) % 30] FROM words)],
           :per_entry,
           'user' || (n % 25) || ' user' || ((n + 1) % 25),
           'initial import of run ' || n || E'\\nrecalibrated ' || (n % 97),
           (SELECT string_agg(w[1 + ((n * k * 13) % 30)], ' ') FROM words, generate_series(1, 60) k)
               || ' unique' || n || ' import numpy as np; data = np.load(run' || n || ')'
    FROM generate_series(1, :entries) n
    RETURNING id, head
)
INSERT INTO repository.versions (entry_id, number, author, message, content, sha256, size)
SELECT made.id, v, 'user' || (v % 25), 'change ' || v,
       convert_to(json_build_object(
           'cells', json_build_array(json_build_object(
               'cell_type', 'code', 'id', 'c' || v, 'metadata', '{}'::json,
               'execution_count', NULL, 'outputs', '[]'::json,
               'source', 'x = ' || v || repeat(' # padding', 50))),
           'metadata', '{}'::json, 'nbformat', 4, 'nbformat_minor', 5)::text, 'UTF8'),
       md5(made.id || ':' || v), 700
FROM made, generate_series(1, made.head) v
"""


def source_notebook(marker: str, size: int = 1_000_000) -> bytes:
    """The worst case: ~1 MB of code and markdown (nothing to strip), ~2,400 cells."""
    line = f"values_{marker} = [x * 0.5 for x in range(100)]  # {marker}\n"
    cells = []
    while sum(len(c.source) for c in cells) < size:
        cells.append(new_code_cell(line * 40))
        cells.append(new_markdown_cell(f"Step {len(cells)} of the {marker} analysis.\n" * 10))
    return _serialized(new_notebook(cells=cells))


def output_notebook(marker: str, size: int = 1_000_000) -> bytes:
    """A typical 1 MB notebook: 120 short cells, most bytes in plots (base64 PNG outputs)."""
    cells = []
    plot = base64.b64encode(random.Random(marker).randbytes(6_000)).decode()
    for number in range(60):
        cells.append(new_markdown_cell(f"## Step {number}: the {marker} fit\nWe fit $n_e$ here."))
        code = new_code_cell(f"fit_{marker}_{number} = curve_fit(model, v, i)\nplot(fit)\n" * 5)
        code.outputs = [
            new_output("stream", name="stdout", text=f"converged after {number} steps\n"),
            new_output("display_data", data={"image/png": plot, "text/plain": "<Figure>"}),
        ]
        cells.append(code)
    notebook = new_notebook(cells=cells)
    while len(_serialized(notebook)) < size:
        notebook.cells[-1].outputs.append(notebook.cells[-1].outputs[-1])
    return _serialized(notebook)


def _serialized(notebook: nbformat.NotebookNode) -> bytes:
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    return nbformat.writes(notebook).encode()


@dataclass
class Timings:
    """Wall time, and the CPU time of this process (hub and client, all threads), in ms.

    PostgreSQL runs in processes of its own and is not in the CPU figure; on a
    busy machine the CPU figure is the steadier one.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    async def measure(self, work: Awaitable[T]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        result = await work
        self.wall.append((time.perf_counter() - wall) * 1000)
        self.cpu.append((time.process_time() - cpu) * 1000)
        return result


async def timed(action: Callable[[], Awaitable[object]], repeats: int = REPEATS) -> Timings:
    timings = Timings()
    for _ in range(repeats):
        await timings.measure(action())
    return timings


def summary(name: str, timings: Timings, goal: float | None) -> tuple[str, ...]:
    samples = timings.wall
    median = statistics.median(samples)
    p95 = sorted(samples)[max(0, round(len(samples) * 0.95) - 1)]
    verdict = "" if goal is None else ("yes" if median < goal else "no")
    return (
        name,
        f"{median:.1f}",
        f"{p95:.1f}",
        f"{statistics.median(timings.cpu):.1f}",
        "" if goal is None else f"< {goal:.0f}",
        verdict,
    )


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


async def push_and_pull(
    app: GilHub,
    client: httpx.AsyncClient,
    owner: str,
    path: str,
    variants: list[bytes],
    keep_outputs: bool,
) -> tuple[Timings, Timings]:
    """Alternate two versions of a notebook: every push and every pull does real work."""
    push_times, pull_times = Timings(), Timings()
    for turn in range(REPEATS):
        content = variants[turn % 2]
        async with app.db.begin() as conn:
            record = await contents.read_file(conn, owner, path)
            if record is not None:  # a real edit keeps the recorded origin
                edited = orjson.loads(content)
                edited["metadata"] = orjson.loads(record.content)["metadata"]
                content = orjson.dumps(edited)
            await contents.write_file(conn, owner, path, content)
        body = {"source": path, "path": "bench/" + path, "keep_outputs": keep_outputs}
        expect(await push_times.measure(client.post("/hub/api/repo/push", json=body)), 201)
    for turn in range(REPEATS):
        body = {
            "path": "bench/" + path,
            "version": 1 + turn % 2,
            "dest": "pulled/" + path,
            "on_exists": "overwrite",
        }
        expect(await pull_times.measure(client.post("/hub/api/repo/pull", json=body)), 201)
    return push_times, pull_times


async def run_benchmark(data_dir: Path, search_only: bool) -> list[tuple[str, ...]]:
    database = await asyncio.to_thread(start_embedded, data_dir)
    app = GilHub()
    app.db_url, app.data_dir, app.ip, app.port = database.url, data_dir, "127.0.0.1", 0
    await app.start_hub()
    try:
        return await measure(app, search_only)
    finally:
        if app.servers is not None:
            app.servers.cleanup_servers = True
        await app.stop_hub()
        await asyncio.to_thread(database.stop)


async def measure(app: GilHub, search_only: bool) -> list[tuple[str, ...]]:
    user, _ = await app.accounts.create("bench", "bench-password-1")
    async with app.db.begin() as conn:
        token = (await create_token(conn, user.id, note="bench")).token
    print(f"bulk-loading {ENTRIES:,} entries with {VERSIONS:,} versions ...", flush=True)
    start = time.perf_counter()
    async with app.db.begin() as conn:
        await conn.execute(text(_BULK_LOAD), {"entries": ENTRIES, "per_entry": VERSIONS // ENTRIES})
        await conn.execute(text("ANALYZE repository.entries; ANALYZE repository.versions"))
    print(f"  loaded in {time.perf_counter() - start:.1f} s", flush=True)

    rows = []
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.bound_port}", headers=headers, timeout=60
    ) as client:
        shapes = [
            ("1 MB notebook, plots as outputs, outputs stripped (default)", output_notebook, False),
            ("1 MB notebook, plots as outputs, outputs kept", output_notebook, True),
            ("1 MB of source in 2,400 cells (worst case)", source_notebook, False),
        ]
        for number, (label, make, keep_outputs) in enumerate([] if search_only else shapes):
            variants = [make("alpha"), make("beta")]
            print(f"{label}: {len(variants[0]):,} bytes", flush=True)
            push_times, pull_times = await push_and_pull(
                app, client, user.db_role, f"shape{number}.ipynb", variants, keep_outputs
            )
            rows.append(summary(f"push: {label}", push_times, 50))
            rows.append(summary(f"pull: {label}", pull_times, 50))

        queries = iter(
            [
                "langmuir probe",
                "thomson",
                "unique4242",
                "recalibrated",
                "user7",
                "tokamak argon",
                '"electron temperature"',
                "interferometer",
            ]
            * 10
        )

        async def search() -> None:
            response = expect(
                await client.get("/hub/api/repo/search", params={"q": next(queries)}), 200
            )
            assert response.json()["results"]

        rows.append(
            summary(
                f"search, {ENTRIES:,} entries / {VERSIONS:,} versions", await timed(search), 100
            )
        )
        print(f"making every entry's text longer than {LONG_BODY_CHARS:,} characters ...")
        async with app.db.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE repository.entries"
                    " SET body = repeat(body || ' ', ceil(:chars / length(body))::int + 1)"
                ),
                {"chars": LONG_BODY_CHARS},
            )
            await conn.execute(text("ANALYZE repository.entries"))
            shortest = await conn.scalar(text("SELECT min(length(body)) FROM repository.entries"))
        rows.append(
            summary(
                f"search, {ENTRIES:,} entries of over {shortest // 1000}k characters",
                await timed(search),
                100,
            )
        )
        if search_only:
            return rows

        print(f"pushing {HISTORY_VERSIONS:,} versions of one entry ...", flush=True)
        async with app.db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO repository.versions"
                    " (entry_id, number, author, message, content, sha256, size)"
                    " SELECT id, v, 'bench', 'step ' || v, convert_to('x' || v, 'UTF8'),"
                    " md5(v::text), 2 FROM repository.entries,"
                    " generate_series(CAST(:first AS int), CAST(:last AS int)) v"
                    " WHERE path = 'group1/project1/analysis1.ipynb'"
                ),
                {"first": VERSIONS // ENTRIES + 1, "last": HISTORY_VERSIONS},
            )
            await conn.execute(
                text(
                    "UPDATE repository.entries SET head = :head"
                    " WHERE path = 'group1/project1/analysis1.ipynb'"
                ),
                {"head": HISTORY_VERSIONS},
            )
        path = "group1/project1/analysis1.ipynb"

        async def history(limit: int) -> None:
            response = await client.get(f"/hub/api/repo/history/{path}", params={"limit": limit})
            assert len(expect(response, 200).json()["versions"]) == limit

        rows.append(
            summary("history API, newest 100 of 1,000", await timed(lambda: history(100)), 100)
        )
        rows.append(summary("history API, all 1,000", await timed(lambda: history(1000)), None))

    web = httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.bound_port}", timeout=60)
    async with web:
        await web.get("/hub/login")
        expect(
            await web.post(
                "/hub/login",
                data={
                    "username": "bench",
                    "password": "bench-password-1",
                    "_xsrf": web.cookies["_xsrf"],
                },
            ),
            303,  # a form POST is answered with 303 (POST/redirect/GET)
        )

        async def history_page() -> None:
            expect(await web.get(f"/hub/repo/entry/{path}"), 200)

        rows.append(
            summary("history page (HTML, newest 100 of 1,000)", await timed(history_page), 100)
        )
    return rows


HEAD = (
    "measurement",
    "wall median ms",
    "wall p95 ms",
    "CPU median ms",
    "goal ms",
    "median meets goal",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-only", action="store_true", help="measure the searches only")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "repo.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gilhub-repo-bench-") as directory:
        rows = asyncio.run(run_benchmark(Path(directory), args.search_only))
    command = " ".join(["python bench/repo_bench.py", *sys.argv[1:]])
    write_report(
        args.output.stem,
        "# Shared repository benchmark\n\n"
        f"`{command}` on {machine()}, load average {load_average()} at the end;"
        f" {REPEATS} runs each, real hub over HTTP (token auth), embedded PostgreSQL.\n\n"
        f"{markdown_table(HEAD, rows)}\n",
        args.output.parent,
    )


if __name__ == "__main__":
    main()
