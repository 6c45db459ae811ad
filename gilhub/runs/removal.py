"""Ending a removed user's runs: with or without a running hub (the command line).

Kept apart from :mod:`.service` so that the accounts service (imported by every
``gilhub`` command) does not import papermill and the worker with it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.runs import query
from gilhub.spawner.base import Spawner
from gilhub.spawner.jobs import ProcessJob


async def end_user_runs(
    engine: AsyncEngine, user_id: int, *, grace: float, spawner: Spawner | None = None
) -> None:
    """The user is being removed: cancel their active runs and end their workers, found by
    their user's ``spawner`` from what the runs recorded, whether or not a hub runs (the
    command line): a local worker by its pid and start time, a Slurm job by its id
    (``scancel``). Without a spawner, local workers only."""
    async with engine.begin() as conn:
        active = await query.active_runs_of(conn, user_id)
        for run in active:
            if await query.finish_run(conn, run.id, "cancelled"):
                await query.add_message(
                    conn, run.id, run.owner, "INFO", "Cancelled: the user is being removed."
                )
    for run in active:
        state = run.worker or {}
        worker = await spawner.find_job(state) if spawner else ProcessJob.find(state)
        if worker is not None:
            await worker.end(grace)
