"""Activity benchmark: recording one execution, and a notebook's story among 100,000 events.

In one process, on an embedded PostgreSQL in a temporary directory, with the code paths the
handlers run:

- recording: what a user's server does for a batch of one execution (checking it, storing it
  as the user's own role, the continuous rules over the cell's history, the reply), through
  the contents manager's connection pool as in a server; beside it a bare ``SELECT 1`` on the
  same pool, the floor of any database call;
- the narrative of a notebook with 1,000 executions (50 cells run 20 times, a new version
  every fourth run, some errors, answers) while 100,000 executions of 100 notebooks are
  stored: the hub's query and the story built from it, and the Markdown export.

Run from a checkout: ``python bench/activity_bench.py`` (prints a table and writes
``bench/results/activity.md``). Goals (issue 13): under 5 ms p50 added per execution on the
server; the narrative in under 200 ms.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.report import load_average, machine, markdown_table, write_report  # noqa: E402
from bench.scratch_db import scratch_database  # noqa: E402
from gilhub.activity import narrative, query  # noqa: E402
from gilhub.activity.events import parse_events  # noqa: E402
from gilhub.activity.recorder import Recorder  # noqa: E402
from gilhub.activity.rules import Rules  # noqa: E402
from gilhub.activity.schema import answers, cell_versions, executions, prompts  # noqa: E402
from gilhub.activity.site import SiteSettings  # noqa: E402
from gilhub.contents import roles  # noqa: E402
from gilhub.contents.manager import PostgresContentsManager  # noqa: E402

NOTEBOOKS = 100
CELLS = 50
RUNS_PER_CELL = 20
STORY = "notebook0.ipynb"
REPEATS = 20
RECORDINGS = 200
BATCH = 20  # executions per batch, as the JupyterLab extension sends them at most
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


async def timed(
    action: Callable[[], Awaitable[object]], repeats: int
) -> tuple[float, float, float]:
    """Median and 90th percentile wall time, and median CPU time of this process (which a
    busy machine does not inflate; PostgreSQL's work is not in it), in milliseconds."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        await action()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu_start) * 1000)
    return statistics.median(walls), statistics.quantiles(walls, n=10)[-1], statistics.median(cpus)


def per_execution(times: tuple[float, float, float]) -> tuple[float, float, float]:
    wall, wall_p90, cpu = times
    return wall / BATCH, wall_p90 / BATCH, cpu / BATCH


def source(cell: int, run: int) -> str:
    return f"result_{cell} = fit(data, order={run // 4})\nplot(result_{cell})\n"


async def fill(engine: AsyncEngine, owner: str) -> None:
    """100 notebooks of 50 cells, each cell run 20 times (a new version every fourth run,
    the run before a new version failing now and then), answers on the story's cells."""
    for notebook in range(NOTEBOOKS):
        path = f"notebook{notebook}.ipynb"
        versions, runs = {}, []
        for cell in range(CELLS):
            for run in range(RUNS_PER_CELL):
                text_ = source(cell, run)
                version = hashlib.sha256(text_.encode()).hexdigest()
                key = {"owner": owner, "path": path, "cell_id": f"c{cell}", "cell_version": version}
                versions[version] = {**key, "source": text_}
                moment = T0 + timedelta(minutes=cell * RUNS_PER_CELL + run)
                failed = run % 4 == 3 and cell % 3 == 0
                runs.append(
                    {
                        **key,
                        "execution_count": run,
                        "started": moment,
                        "ended": moment,
                        "status": "error" if failed else "ok",
                        "ename": "ValueError" if failed else None,
                        "evalue": "bad order" if failed else None,
                    }
                )
        async with engine.begin() as conn:
            await conn.execute(insert(cell_versions), list(versions.values()))
            await conn.execute(insert(executions), runs)
            if path == STORY:
                await add_answers(conn, owner, list(versions.values()))


async def add_answers(conn, owner: str, versions: list[dict]) -> None:  # type: ignore[no-untyped-def]
    for version in versions[::8]:
        key = {name: version[name] for name in ("owner", "path", "cell_id", "cell_version")}
        prompt = await conn.execute(
            insert(prompts).values(**key, reason="changed").returning(prompts.c.id)
        )
        await conn.execute(
            insert(answers).values(**key, prompt_id=prompt.scalar_one(), answer="Trying an order")
        )


async def measure(engine: AsyncEngine, url: str, owner: str) -> list[tuple[str, ...]]:
    manager = PostgresContentsManager(db_url=url)
    site = SiteSettings(enabled=True, rules=Rules(mode="continuous"), events_per_minute=10**9)
    recorder = Recorder(site, manager.transaction, manager.log)
    counter = iter(range(10**9))

    def execution(run: int) -> dict:
        moment = (T0 + timedelta(days=1, seconds=run)).isoformat()
        return {
            "type": "execution",
            "path": "notebook1.ipynb",
            "cell_id": f"c{run % CELLS}",
            "source": source(run % CELLS, run),
            "execution_count": run,
            "started": moment,
            "ended": moment,
            "status": "ok",
        }

    async def record(executions: int) -> None:
        body = {"events": [execution(next(counter)) for _ in range(executions)]}
        await recorder.record(parse_events(body))

    async def record_one() -> None:
        await record(1)

    async def record_batch() -> None:
        await record(BATCH)

    async def round_trip() -> None:
        async with manager.transaction() as (conn, _):
            await conn.execute(text("SELECT 1"))

    async def story() -> dict:
        async with engine.connect() as conn:
            record = await query.notebook_record(conn, owner, STORY)
        return narrative.narrative(record, timedelta(minutes=30))

    async def markdown() -> None:
        narrative.markdown(await story())

    try:
        await record_one()  # the pool's first connections
        rows = [
            (
                "server: SELECT 1 as the user's role (floor)",
                await timed(round_trip, RECORDINGS),
                "",
            ),
            (
                "server: record a batch of one execution",
                await timed(record_one, RECORDINGS),
                "< 5 ms",
            ),
            (
                f"server: record a batch of {BATCH} (the front end's), per execution",
                per_execution(await timed(record_batch, RECORDINGS // BATCH * 4)),
                "< 5 ms",
            ),
            ("hub: narrative of 1,000 executions (JSON)", await timed(story, REPEATS), "< 200 ms"),
            ("hub: narrative as Markdown", await timed(markdown, REPEATS), ""),
        ]
    finally:
        await manager.close()
    return [
        (name, f"{p50:.1f} ms", f"{p90:.1f} ms", f"{cpu:.1f} ms", goal)
        for name, (p50, p90, cpu), goal in rows
    ]


async def main() -> None:
    async with scratch_database() as scratch:
        owner = await roles.ensure_user_role(scratch.engine, "ada")
        password = await roles.issue_role_password(scratch.engine, owner)
        url = roles.user_database_url(scratch.url, owner, password)
        await fill(scratch.engine, owner)
        rows = await measure(scratch.engine, url.render_as_string(hide_password=False), owner)
    report(rows)


def report(rows: list[tuple[str, ...]]) -> None:
    head = ("measurement", "wall, median", "wall, 90th percentile", "CPU, median", "goal")
    stored = NOTEBOOKS * CELLS * RUNS_PER_CELL
    write_report(
        "activity",
        f"# Activity benchmark\n\n{stored:,} executions stored (`python bench/activity_bench.py`;"
        f" {machine()}, load average {load_average()} at the end;"
        f" {RECORDINGS} recordings, {REPEATS} narratives).\n\n{markdown_table(head, rows)}\n",
    )


if __name__ == "__main__":
    asyncio.run(main())
