"""Users' servers as Slurm batch jobs.

``c.GilHub.spawner_class = "gilhub.spawner.slurm.SlurmSpawner"``.

A start renders a batch script (a Jinja template) and submits it with
``sbatch --parsable``, the script on standard input, as the user's own system
account when the hub runs as root (else as the hub's account). Secrets (the
server's token, the user's database URL) travel only in sbatch's environment and
are exported to the job by *name* (``--export=NAME,…``): never in the script,
never on a command line.

On its node the job binds the address from which the node reaches the hub
(``python -m gilhub.serverext.address``) on a port the server picks, and reports
both to the hub (``POST /hub/api/users/NAME/server/address``, with its own token);
:meth:`SlurmSpawner.start` returns that address. Meanwhile the job's state comes
from the hub's one :class:`~gilhub.spawner.slurm_queue.SlurmQueue` (one ``squeue``
call per interval for every job): the progress page shows why a job is pending,
and a job that ends before its server answers fails the start with the tail of its
output. Stopping is ``scancel`` and waiting until the job has left the queue. The
job id, address and output file are the spawner's state, so a restarted hub finds
running jobs again.

The hub reads the job's output file (``output``, in the user's home by default) for
the failure page, and the user's server reaches PostgreSQL over the network: see
README, "Growing beyond one machine".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shlex
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import jinja2
from traitlets import Float, Int, List, TraitError, Unicode, default, validate

from gilhub.serverext.address import ADDRESS_URL_VARIABLE
from gilhub.servers.models import SpawnFailed
from gilhub.spawner import jobs
from gilhub.spawner.accounts import account_name, find_account
from gilhub.spawner.base import Spawner, hub_runs_as_root, scratch_home
from gilhub.spawner.isolation import Isolation
from gilhub.spawner.slurm_queue import PENDING, UNKNOWN, Job, SlurmQueue

_SCRIPT_HEADER = """\
#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --output={{ output }}
#SBATCH --chdir={{ home }}
#SBATCH --export={{ export }}
{% for option in options -%}
#SBATCH {{ option }}
{% endfor -%}
set -eu
umask {{ umask }}
"""
DEFAULT_BATCH_SCRIPT = (
    _SCRIPT_HEADER
    + """\
address=$({{ python }} -m gilhub.serverext.address)
exec {{ command }} --ServerApp.ip="$address"
"""
)
DEFAULT_JOB_SCRIPT = _SCRIPT_HEADER + "exec {{ command }}\n"

#: Slurm's reasons for a pending job, in words for the person waiting.
PENDING_REASONS = {
    "Resources": "waiting for resources",
    "Priority": "waiting behind jobs of higher priority",
    "ReqNodeNotAvail": "the requested nodes are not available",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "Dependency": "waiting for another job",
    "BeginTime": "waiting for its start time",
    "JobHeldAdmin": "held by an administrator",
    "JobHeldUser": "held",
    "QOSMaxJobsPerUserLimit": "you have as many jobs running as you may",
    "AssocMaxJobsLimit": "you have as many jobs running as you may",
}
_LOG_TAIL_BYTES = 64 * 1024
_UNSAFE_IN_JOB_NAME = re.compile(r"[^A-Za-z0-9._-]")


class SlurmSpawner(Spawner):
    """Runs each user's server as a Slurm batch job."""

    partition = Unicode("", config=True, help="Partition for the jobs (--partition; '' default).")
    time_limit = Unicode(
        "8:00:00", config=True, help="Time limit of a server's job (--time; '' for none)."
    )
    memory = Unicode("", config=True, help="Memory per node, e.g. '4G' (--mem; '' default).")
    cpus = Int(0, config=True, help="CPUs for the server (--cpus-per-task; 0: Slurm's default).")
    gres = Unicode("", config=True, help="Generic resources, e.g. 'gpu:1' (--gres).")
    extra_options = List(
        Unicode(),
        config=True,
        help="More sbatch options, one per #SBATCH line, e.g. ['--account=lab', '--qos=ui'].",
    )
    batch_script = Unicode(
        DEFAULT_BATCH_SCRIPT,
        config=True,
        help="""Jinja template of the batch script. Variables: job_name, output, home, export
        (the exported variables' names), options (the #SBATCH options from the traitlets),
        umask, python (cmd[0]) and command (the server's command line, shell-quoted). It must
        run {{ command }} with --ServerApp.ip set to an address of the node the hub can
        reach. It is given to sbatch on standard input and holds no secret.""",
    )
    job_script = Unicode(
        DEFAULT_JOB_SCRIPT,
        config=True,
        help="""Jinja template of the batch script of a user's other jobs (a notebook run's
        worker): the variables of batch_script; it must run {{ command }} with exec (a
        cancelled run's worker gets its SIGINT as the batch script's process).""",
    )
    output = Unicode(
        "{home}/.gilhub-slurm-%j.log",
        config=True,
        help="""The job's output file (--output; %j is the job id, {home} the user's home),
        created by Slurm as the job's account with mode 0600. The hub reads its end for
        the page shown when a start fails, and removes it when the job ended well (it
        completed, or the hub stopped a server that had started); see README.""",
    )
    umask = Unicode(
        "022",
        config=True,
        help="""The umask of the job's processes (the batch script's 'umask' line). sbatch
        itself runs with umask 077, so that Slurm creates the output file private.""",
    )

    @validate("umask")
    def _octal_umask(self, proposal: Any) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", proposal["value"]):
            raise TraitError(f"umask must be an octal mask such as 022, not {proposal['value']!r}")
        return proposal["value"]

    sbatch = List(Unicode(), default_value=["sbatch"], config=True, help="The sbatch command.")
    scancel = List(Unicode(), default_value=["scancel"], config=True, help="The scancel command.")
    command_timeout = Float(
        30.0, config=True, help="Seconds sbatch and scancel may take before they count as failed."
    )
    stop_timeout = Float(
        60.0, config=True, help="Seconds to wait for a cancelled job to leave the queue."
    )
    hub_url = Unicode(
        "",
        config=True,
        help="""The hub's URL as compute nodes reach it (servers report their address
        there). Default: c.GilHub.public_url.""",
    )
    account_prefix = Unicode(
        "",
        config=True,
        help="""Under a root hub, jobs run as system account PREFIX + NAME (the cluster's
        accounts, e.g. from the lab's directory, are usually the users' names).""",
    )
    pass_environment = List(
        Unicode(),
        default_value=["SLURM_CONF"],
        config=True,
        help="Variables of the hub's environment sbatch itself needs (not given to the job).",
    )

    @default("start_timeout")
    def _default_start_timeout(self) -> float:
        return 300.0  # time waiting in the Slurm queue counts

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id: str | None = None
        self.host: str | None = None
        self.port: int | None = None
        self._output: str | None = None
        self._home: Path | None = None
        self._address: asyncio.Future[tuple[str, int]] | None = None
        self._ended: Job | None = None
        self._own_queue: SlurmQueue | None = None

    @property
    def queue(self) -> SlurmQueue:
        """The hub's one queue, shared by every user's spawner; without a running hub (a
        command such as ``gilhub user remove``, ending a user's jobs) one of its own."""
        if self.hub.servers is not None:
            return self.hub.servers.spawner_service(SlurmQueue)
        if self._own_queue is None:
            self._own_queue = SlurmQueue(parent=self)
        return self._own_queue

    # -- who runs the job, and where -------------------------------------------------

    async def isolation_status(self) -> Isolation:
        if hub_runs_as_root():
            return Isolation(system_users=True, sandbox=False, note="Slurm jobs")
        return Isolation(False, False, note="Slurm jobs run under the hub's account")

    def prepare(self) -> None:
        """Settle the account the job runs as and its home (a root hub never uses root)."""
        self._account = None
        if not hub_runs_as_root():
            self._home = scratch_home(self.hub, self.user.name)
            return
        name = account_name(self.account_prefix, self.user.name)
        account = find_account(name)
        if account is None or account.pw_uid == 0:
            if not self.allow_root:
                raise SpawnFailed(
                    f"There is no system account {name} to run your server's job as;"
                    " ask an administrator to create it."
                )
            self._home = scratch_home(self.hub, self.user.name)
            return
        self._account = account
        self._home = Path(account.pw_dir)

    def get_env(self) -> dict[str, str]:
        return {**super().get_env(), ADDRESS_URL_VARIABLE: self.address_url()}

    def home(self) -> Path:
        assert self._home is not None, "prepare() settles the home before the job"
        return self._home

    def address_url(self) -> str:
        """Where the server reports its address: the hub's API as the nodes reach it."""
        path = f"{self.hub.hub_prefix}api/users/{quote(self.user.name)}/server/address"
        return urljoin(self.hub_url or self.hub.public_url, path)

    def server_settings(self, port: int) -> dict[str, str]:
        settings = super().server_settings(port)
        del settings["ServerApp.ip"]  # the batch script gives the node's address
        return settings

    def sbatch_options(self) -> list[str]:
        options = []
        for option, value in (
            ("--partition", self.partition),
            ("--time", self.time_limit),
            ("--mem", self.memory),
            ("--cpus-per-task", str(self.cpus) if self.cpus else ""),
            ("--gres", self.gres),
        ):
            if value:
                options.append(f"{option}={value}")
        return [*options, *self.extra_options]

    def batch_script_text(
        self, env: dict[str, str], *, template: str | None = None, command: list[str] | None = None
    ) -> str:
        """The batch script of the server (or, given ``template`` and ``command``, of
        another job): no secret in it (the environment carries them)."""
        command = command or [*self.cmd, *self.get_args(0)]
        name = f"gilhub-{self.user.name}" if template is None else f"gilhub-job-{self.user.name}"
        return _compiled(template or self.batch_script).render(
            job_name=_UNSAFE_IN_JOB_NAME.sub("_", name),
            output=self._output,
            home=self._home,
            export=",".join(sorted(env)),
            options=self.sbatch_options(),
            python=shlex.quote(command[0]),
            command=shlex.join(command),
            umask=self.umask,
        )

    # -- the contract ---------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        self._address = asyncio.get_running_loop().create_future()
        await self._submit_job(self.get_env)
        self.log.info("submitted the server of %s as Slurm job %s", self.user.name, self.job_id)
        self.host, self.port = await self._wait_for_address()
        return self.host, self.port

    async def start_job(self, cmd: list[str], *, env: dict[str, str], log_path: Path) -> jobs.Job:
        """Submit ``cmd`` (a notebook run's worker) as a job of the user's, as the server is
        submitted (its output goes to :attr:`output`, not ``log_path``)."""
        await self._submit_job(
            lambda: {**env, **self.identity_env()}, template=self.job_script, command=cmd
        )
        self.log.info("submitted a job of %s as Slurm job %s", self.user.name, self.job_id)
        return SlurmJob(self)

    async def find_job(self, state: dict[str, Any]) -> jobs.Job | None:
        self.load_state(state)
        if await self.poll() is None:
            return SlurmJob(self)
        if self.job_id is not None:
            self.queue.forget(self.job_id)
        return None

    async def _submit_job(self, environment: Callable[[], dict[str, str]], **script: Any) -> None:
        """Submit this spawner's job, with the environment ``environment()`` gives once the
        account is settled, and watch it."""
        self.prepare()
        assert self._home is not None
        self._output = self.output.format(home=self._home)
        self._ended, self.host, self.port = None, None, None
        env = environment()
        self.job_id = await self._submit(self.batch_script_text(env, **script), env)
        self.queue.watch(self.job_id, submitted=True)

    async def _submit(self, script: str, env: dict[str, str]) -> str:
        submit_env = {**env}
        submit_env.update(
            {name: os.environ[name] for name in self.pass_environment if name in os.environ}
        )
        user = group = None
        if self._account is not None:
            user, group = self._account.pw_name, self._account.pw_gid
        output, errors, code = await _run(
            [*self.sbatch, "--parsable"],
            stdin=script.encode(),
            env=submit_env,
            cwd=self._home,
            user=user,
            group=group,
            timeout=self.command_timeout,
        )
        job_id = output.strip().split(";")[0]
        if code != 0 or not job_id.isdigit():
            raise SpawnFailed(f"Slurm did not take the job: {errors.strip() or output.strip()}")
        return job_id

    async def _wait_for_address(self) -> tuple[str, int]:
        """Until the server reports its address; show why the job waits meanwhile."""
        assert self._address is not None and self.job_id is not None
        said = None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                return await asyncio.wait_for(
                    asyncio.shield(self._address), self.queue.poll_interval
                )
            job = await self.queue.latest(self.job_id)
            if job is None or job.ended:
                self._ended = job
                ended = job.describe_end() if job else f"the Slurm job {self.job_id} ended"
                raise SpawnFailed(f"Your server did not start: {ended} before it answered.")
            message = self.describe_wait(job)
            if message != said:
                said = message
                self.report_progress(message)

    def describe_wait(self, job: Job) -> str:
        """What the job waits for (in the queue, or for its server), in words."""
        if job.state == PENDING:
            reason = PENDING_REASONS.get(job.reason, "waiting to be scheduled")
            code = f" ({job.reason})" if job.reason else ""
            return f"Your job {job.job_id} waits in the Slurm queue: {reason}{code}"
        if job.state == UNKNOWN:
            return f"Your job {job.job_id} is submitted; Slurm does not answer yet"
        where = f" on {job.host}" if job.host else ""
        return f"Your job {job.job_id} runs{where}; waiting for your server to start"

    def address_reported(self, host: str, port: int) -> bool:
        if self._address is not None and not self._address.done():
            self._address.set_result((host, port))
        return True

    async def poll(self) -> int | None:
        if self.job_id is None:
            return 0
        job = await self.queue.latest(self.job_id)
        if job is None:
            return 0  # gone from the controller's memory: its status is unknown
        if job.ended:
            self._ended = job
            if job.exit_code == 0:
                await self._remove_output()
            return job.exit_code
        return None

    def end_reason(self) -> str | None:
        return self._ended.describe_end() if self._ended is not None else None

    async def stop(self) -> None:
        """``scancel`` the job and wait until it has left the queue."""
        job_id = self.job_id
        if job_id is None:
            return
        # a server the hub stops after it started ends well; its output is not needed
        ended_well = self.port is not None and self._ended is None
        job = await self.queue.latest(job_id)
        if job is not None and not job.ended:
            await self.scancel_job()
            deadline = time.monotonic() + self.stop_timeout
            while job is not None and not job.ended and time.monotonic() < deadline:
                job = await self.queue.fresh(job_id)
            if job is not None and not job.ended:
                self.log.warning("Slurm job %s is still %s after scancel", job_id, job.state)
        if ended_well:
            await self._remove_output()
        self.queue.forget(job_id)
        self._output = self.log_location()  # still shown after a failed start
        self.job_id = None

    async def scancel_job(self, *options: str) -> bool:
        """``scancel OPTIONS JOB`` (without options: cancel the job); whether Slurm took it
        (a failure is logged, not raised)."""
        assert self.job_id is not None
        command = [*self.scancel, *options, self.job_id]
        try:
            _, errors, code = await _run(
                command, env=dict(os.environ), timeout=self.command_timeout
            )
        except SpawnFailed as failure:  # scancel missing, or Slurm not answering
            errors, code = str(failure), -1
        if code != 0:
            self.log.warning("%s failed: %s", shlex.join(command), errors.strip())
        return code == 0

    async def _remove_output(self) -> None:
        """Remove the job's output file: it ended well (failed jobs keep theirs)."""
        location = self.log_location()
        if location is not None:
            await asyncio.to_thread(_remove_user_file, location)

    def log_location(self) -> str | None:
        if self._output is None or self.job_id is None:
            return self._output
        return self._output.replace("%j", self.job_id)

    def log_tail(self, lines: int = 40) -> list[str]:
        location = self.log_location()
        if location is None:
            return []
        try:
            with open(location, "rb") as log:
                log.seek(max(0, log.seek(0, 2) - _LOG_TAIL_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def get_state(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "host": self.host, "port": self.port, "output": self._output}

    def load_state(self, state: dict[str, Any]) -> None:
        self.job_id = state.get("job_id")
        self.host, self.port = state.get("host"), state.get("port")
        self._output = state.get("output")
        if self.job_id is not None:
            self.queue.watch(self.job_id)


class SlurmJob(jobs.Job):
    """A user's job (a run's worker) submitted by its :class:`SlurmSpawner`, whose
    :meth:`~SlurmSpawner.poll` and :meth:`~SlurmSpawner.stop` watch and end it."""

    def __init__(self, spawner: SlurmSpawner) -> None:
        self.spawner = spawner

    def state(self) -> dict[str, Any]:
        return self.spawner.get_state()

    async def wait(self) -> None:
        while await self.spawner.poll() is None:  # noqa: ASYNC110 (squeue says when it ends)
            await asyncio.sleep(self.spawner.queue.poll_interval)
        if self.spawner.job_id is not None:
            self.spawner.queue.forget(self.spawner.job_id)

    async def waiting(self) -> str | None:
        """Why the job is still in Slurm's queue ("waiting for resources"), from the hub's
        one queue (no squeue call of its own)."""
        if self.spawner.job_id is None:
            return None
        job = await self.spawner.queue.latest(self.spawner.job_id)
        if job is None or job.state not in (PENDING, UNKNOWN):
            return None
        return self.spawner.describe_wait(job)

    async def interrupt(self, spare: str) -> bool:
        """SIGINT to the batch script's process, which is the worker (``exec``), which
        passes it to its kernel (:func:`gilhub.runs.worker.pass_interrupts_to_the_kernel`).
        (By default scancel signals only job steps, which a worker's job has none of;
        ``--full`` would reach the kernel only where Slurm tracks processes by cgroup: it
        leads a session of its own.)"""
        if self.spawner.job_id is None:
            return False
        return await self.spawner.scancel_job("--signal=INT", "--batch")

    async def end(self, grace: float) -> None:
        await self.spawner.stop()


@functools.lru_cache(maxsize=8)
def _compiled(template: str) -> jinja2.Template:
    """A batch script template, compiled once (not at each of many submits: it blocked the
    hub's loop for milliseconds each time)."""
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (a shell script)
    ).from_string(template)


def _remove_user_file(path: str) -> None:
    """Remove ``path`` if it is a regular file, without following a symbolic link the user
    put in its place or in place of its directory (the hub may be root; the file is in
    the user's home)."""
    folder, name = os.path.split(path)
    try:
        directory = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # gone already, or never written
            if stat.S_ISREG(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=directory)
    finally:
        os.close(directory)


async def _run(
    command: list[str],
    *,
    env: dict[str, str],
    timeout: float,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    group: int | None = None,
) -> tuple[str, str, int]:
    """Run a Slurm command (as ``user`` if given): (stdout, stderr, exit code)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
            umask=0o077,  # sbatch passes it on: Slurm creates the job's output file 0600
        )
    except OSError as error:
        raise SpawnFailed(f"Cannot run {command[0]}: {error}") from error
    try:
        output, errors = await asyncio.wait_for(process.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise SpawnFailed(f"{command[0]} did not answer within {timeout:g} seconds.") from None
    return output.decode(errors="replace"), errors.decode(errors="replace"), process.returncode or 0
