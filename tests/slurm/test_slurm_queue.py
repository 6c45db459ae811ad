"""The Slurm queue when the controller does not answer: jobs keep their state, nothing waits
longer than the timeout, and the outage is noticed (no Slurm needed)."""

from __future__ import annotations

import asyncio
import sys

from gilhub.spawner.slurm_queue import PENDING, UNKNOWN, SlurmQueue

# squeue's arguments follow the code and are ignored: an squeue that never answers
SILENT_SQUEUE = [sys.executable, "-c", "import time; time.sleep(600)"]


async def test_a_silent_controller_keeps_jobs_alive_and_costs_at_most_the_timeout():
    queue = SlurmQueue(squeue=SILENT_SQUEUE, timeout=0.5, poll_interval=0.1)
    queue.watch("41", submitted=True)
    async with asyncio.timeout(10):  # never the ten minutes squeue would take
        submitted = await queue.fresh("41")
        adopted = await queue.fresh("42")  # a job never seen by a successful call
    assert not queue.reachable
    assert submitted.state == PENDING and not submitted.ended
    assert adopted.state == UNKNOWN and not adopted.ended
    assert queue.calls == 2  # one call per refresh, never one per job or question
