"""What Slurm says about the hub's jobs: one ``squeue`` call per interval for all of them.

Every :class:`~gilhub.spawner.slurm.SlurmSpawner` of a hub asks the hub's one
:class:`SlurmQueue` about its job. The queue never runs ``squeue`` per job or per
question: it runs one ``squeue --jobs=ID,ID,…`` for every job it watches, at most
once per :attr:`SlurmQueue.poll_interval`, in a task of its own with a timeout (a
controller that is down answers only after about 18 s), and answers from what the
last call said. While the controller does not answer, jobs keep their last known
state (they are not taken for dead), and the outage is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from traitlets import Float, List, Unicode
from traitlets.config import LoggingConfigurable

#: States of a job that will not run again (``squeue --states=all`` still lists them
#: for ``MinJobAge`` seconds).
ENDED_STATES = frozenset(
    {
        "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
        "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT",
    }
)  # fmt: skip
PENDING = "PENDING"
#: Not seen yet by a successful ``squeue`` (the controller did not answer).
UNKNOWN = "UNKNOWN"

_FIELDS = ("JobID", "State", "Reason", "BatchHost", "exit_code")
_SEPARATOR = "|"
_INVALID_JOB_ID = "Invalid job id specified"

#: How the end of a job reads in words, by state.
_END_WORDS = {
    "CANCELLED": "was cancelled",
    "TIMEOUT": "reached its time limit",
    "NODE_FAIL": "ended because its node failed",
    "PREEMPTED": "was preempted",
    "OUT_OF_MEMORY": "ran out of memory",
    "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "reached its deadline",
}


@dataclass(frozen=True)
class Job:
    """One job as ``squeue`` showed it."""

    job_id: str
    state: str
    reason: str = ""
    host: str = ""
    #: The raw wait status (``exit_code``: code << 8 | signal), once it has ended.
    status: int = 0

    @property
    def ended(self) -> bool:
        """Over for good, with its final state. (``COMPLETING`` is not: its processes
        have ended, but whether it completed or was cancelled shows only after.)"""
        return self.state in ENDED_STATES

    @property
    def exit_code(self) -> int:
        """The job's exit code as a shell reports it (128 + signal when killed); never
        0 for a job that did not complete (a cancelled one)."""
        signal = self.status & 0x7F
        code = 128 + signal if signal else self.status >> 8
        if code == 0 and self.state != "COMPLETED":
            return 1
        return code

    def describe_end(self) -> str:
        words = _END_WORDS.get(self.state) or f"ended ({self.state}, exit code {self.exit_code})"
        return f"the Slurm job {self.job_id} {words}"


class SlurmUnreachable(RuntimeError):
    """``squeue`` did not answer in time, or failed."""


class SlurmQueue(LoggingConfigurable):
    """The hub's view of its Slurm jobs: one per hub, shared by its spawners
    (``ServerManager.spawner_service``)."""

    squeue = List(Unicode(), default_value=["squeue"], config=True, help="The squeue command.")
    poll_interval = Float(
        2.0, config=True, help="Seconds between squeue calls (one call covers every job)."
    )
    timeout = Float(
        30.0,
        config=True,
        help="Seconds squeue may take; a controller that is down answers after about 18 s.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watched: set[str] = set()
        #: What the last successful call said (``None``: not listed, i.e. gone).
        self._jobs: dict[str, Job | None] = {}
        self._refresh: asyncio.Task[float] | None = None
        self._last_start = -math.inf
        self._last_success = -math.inf
        self.reachable = True
        self.calls = 0

    def watch(self, job_id: str, *, submitted: bool = False) -> None:
        """Include the job in every squeue call; ``submitted``: sbatch has just taken it,
        so until squeue says otherwise it is pending (no need to wait for a call)."""
        self._watched.add(job_id)
        if submitted:
            self._jobs.setdefault(job_id, Job(job_id, PENDING))

    def forget(self, job_id: str) -> None:
        self._watched.discard(job_id)
        self._jobs.pop(job_id, None)

    async def latest(self, job_id: str) -> Job | None:
        """What is known of the job (``None``: gone), without waiting when it is known;
        a refresh starts in the background when the last one is an interval old."""
        if job_id not in self._jobs:
            return await self.fresh(job_id)
        if time.monotonic() - self._last_start >= self.poll_interval:
            self._schedule()
        return self._jobs[job_id]

    async def fresh(self, job_id: str) -> Job | None:
        """What a ``squeue`` call started from now on says (``None``: gone). Calls stay
        one per interval: this may wait for the next one. When the controller did not
        answer, the last known state (or :data:`UNKNOWN`)."""
        self.watch(job_id)
        asked = time.monotonic()
        while await asyncio.shield(self._schedule()) < asked:
            pass
        return self._jobs.get(job_id, Job(job_id, UNKNOWN))

    def _schedule(self) -> asyncio.Task[float]:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._run_refresh())
        return self._refresh

    async def _run_refresh(self) -> float:
        """One squeue call, no sooner than an interval after the last; its start time."""
        delay = self._last_start + self.poll_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        started = self._last_start = time.monotonic()
        asked = sorted(self._watched)
        if not asked:
            return started
        try:
            listed = await self._squeue(asked)
        except SlurmUnreachable as error:
            if self.reachable:
                self.log.warning("Slurm does not answer (%s); jobs keep their last state", error)
            self.reachable = False
            return started
        if not self.reachable:
            self.log.info("Slurm answers again")
        self.reachable = True
        self._last_success = started
        for job_id in asked:
            if job_id in self._watched:
                self._jobs[job_id] = listed.get(job_id)
        return started

    async def _squeue(self, job_ids: list[str]) -> dict[str, Job]:
        command = [
            *self.squeue, "--noheader", "--states=all", f"--jobs={','.join(job_ids)}",
            "--Format=" + ",".join(f"{field}:{_SEPARATOR}" for field in _FIELDS),
        ]  # fmt: skip
        self.calls += 1
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            raise SlurmUnreachable(f"cannot run {self.squeue[0]}: {error}") from error
        try:
            output, errors = await asyncio.wait_for(process.communicate(), self.timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise SlurmUnreachable(f"squeue did not answer within {self.timeout:g} s") from None
        message = errors.decode(errors="replace").strip()
        if process.returncode != 0:
            if _INVALID_JOB_ID in message:  # every job asked about is gone
                return {}
            raise SlurmUnreachable(message or f"squeue exited with {process.returncode}")
        return parse_squeue(output.decode(errors="replace"))


def parse_squeue(output: str) -> dict[str, Job]:
    """The jobs of ``squeue --Format=JobID:|,State:|,Reason:|,BatchHost:|,exit_code:|``."""
    jobs = {}
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(_SEPARATOR)]
        if len(fields) < len(_FIELDS) or not fields[0]:
            continue
        job_id, state, reason, host, status = fields[: len(_FIELDS)]
        jobs[job_id] = Job(
            job_id,
            state,
            reason if reason != "None" else "",
            host if host not in ("", "(null)", "None") else "",
            int(status) if status.isdigit() else 0,
        )
    return jobs
