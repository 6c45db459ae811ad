"""Jobs of a user's (a notebook run's worker) as :meth:`Spawner.start_job` starts them.

Whoever starts a job (a local process, a Slurm batch job) watches, ends and finds
it again after a hub restart through one small interface, :class:`Job`; its
:meth:`Job.state` is stored as JSON and given back to :meth:`Spawner.find_job`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

import psutil

from gilhub.spawner.process import (
    ChildProcess,
    find_process,
    interrupt,
    process_tree,
    terminate_tree,
)

_POLL_SECONDS = 1.0


class Job(ABC):
    """A started job of a user's."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """What finds the job again (JSON), for :meth:`Spawner.find_job`."""

    @abstractmethod
    async def wait(self) -> None:
        """Until the job has ended."""

    async def waiting(self) -> str | None:
        """Why the job has not begun yet (it waits in a batch scheduler's queue), in words
        for its user; ``None`` once it runs (or has ended)."""
        return None

    @abstractmethod
    async def interrupt(self, spare: str) -> bool:
        """Interrupt what the job's command started (SIGINT: a KeyboardInterrupt in a
        kernel's running cell), sparing the processes with ``spare`` among their arguments
        (the job's own, and wrappers running it); ``False`` where that cannot be done."""

    @abstractmethod
    async def end(self, grace: float) -> None:
        """End the job and everything it started, after ``grace`` seconds at most."""


class ProcessJob(Job):
    """A job that is a process tree on the hub's machine, known by the pid and start time
    of its first process (a reused pid is not taken for it)."""

    def __init__(
        self, pid: int | None, create_time: float | None, child: ChildProcess | None = None
    ) -> None:
        self.pid, self.create_time = pid, create_time
        #: The hub's own handle when the process is its child (it reaps it).
        self.child = child

    @classmethod
    def of_child(cls, child: ChildProcess) -> ProcessJob:
        return cls(child.pid, child.create_time, child)

    @classmethod
    def find(cls, state: dict[str, Any]) -> ProcessJob | None:
        """The job of ``state`` if its process is still there."""
        job = cls(state.get("pid"), state.get("started"))
        return job if job.process() is not None else None

    def process(self) -> psutil.Process | None:
        """The job's first process, while it runs."""
        return find_process(self.pid, self.create_time)

    def state(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.create_time}

    async def wait(self) -> None:
        if self.child is not None:
            await self.child.wait()
            return
        # not the hub's child (found again after a restart): nothing says when it ends
        while self.process() is not None:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_SECONDS)

    async def interrupt(self, spare: str) -> bool:
        process = self.process()
        return process is not None and interrupt(process_tree(process), spare=spare)

    async def end(self, grace: float) -> None:
        process = self.process()
        if process is not None:
            await terminate_tree(process, child=self.child, grace=grace)
