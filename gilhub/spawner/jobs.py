"""Jobs of a user's (a notebook run's worker) as :meth:`Spawner.start_job` starts them.

Whoever starts a job (a local process, a Slurm batch job) watches, ends and finds
it again after a hub restart through one small interface, :class:`Job`; its
:meth:`Job.state` is stored as JSON and given back to :meth:`Spawner.find_job`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Any

import psutil

from gilhub.spawner.process import ChildProcess, find_process, is_windows, terminate_tree

_POLL_SECONDS = 1.0


class Job(ABC):
    """A started job of a user's."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """What finds the job again (JSON), for :meth:`Spawner.find_job`."""

    @abstractmethod
    async def wait(self) -> None:
        """Until the job has ended."""

    @abstractmethod
    async def interrupt(self, spare: str) -> bool:
        """Interrupt what the job's command started (SIGINT: a KeyboardInterrupt in a
        kernel's running cell), sparing the processes with ``spare`` among their arguments
        (the job's own, and wrappers running it); ``False`` where that cannot be done."""

    @abstractmethod
    async def end(self, grace: float) -> None:
        """End the job and everything it started, after ``grace`` seconds at most."""


class ProcessJob(Job):
    """A job that is a process tree on the hub's machine."""

    def __init__(self, process: psutil.Process, child: ChildProcess | None = None) -> None:
        self.process = process
        #: The hub's own handle when the process is its child (it reaps it).
        self.child = child

    @classmethod
    def started(cls, child: ChildProcess) -> Job:
        """The job of a process the hub has just started (``child`` may have ended)."""
        process = find_process(child.pid, child.create_time)
        return cls(process, child) if process is not None else _EndedJob(child)

    @classmethod
    def find(cls, state: dict[str, Any]) -> ProcessJob | None:
        process = find_process(state.get("pid"), state.get("started"))
        return cls(process) if process is not None else None

    def state(self) -> dict[str, Any]:
        return {"pid": self.process.pid, "started": self.process.create_time()}

    async def wait(self) -> None:
        if self.child is not None:
            await self.child.wait()
            return
        # not the hub's child (found again after a restart): nothing says when it ends
        while self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_SECONDS)

    async def interrupt(self, spare: str) -> bool:
        if is_windows():  # no SIGINT for another console's process
            return False
        import signal

        with contextlib.suppress(psutil.Error):
            tree = [self.process, *self.process.children(recursive=True)]
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    if spare not in process.cmdline():
                        process.send_signal(signal.SIGINT)
        return True

    async def end(self, grace: float) -> None:
        await terminate_tree(self.process, child=self.child, grace=grace)


class _EndedJob(Job):
    """A process that ended before it could be looked at."""

    def __init__(self, child: ChildProcess) -> None:
        self.child = child

    def state(self) -> dict[str, Any]:
        return {"pid": self.child.pid, "started": self.child.create_time}

    async def wait(self) -> None:
        await self.child.wait()

    async def interrupt(self, spare: str) -> bool:
        return False

    async def end(self, grace: float) -> None:
        pass
