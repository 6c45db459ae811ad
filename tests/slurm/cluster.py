"""A real single-node Slurm for the tests: munged, slurmctld and slurmd in a directory of
their own.

:func:`start_cluster` writes a minimal ``slurm.conf`` (the settings known to work on a
Debian machine without cgroups or accounting), creates a munge key, starts ``munged``
as the ``munge`` account, ``slurmctld -D -i`` and ``slurmd -D -N localhost`` (as root),
and returns once ``sinfo`` shows the node idle. :meth:`SlurmCluster.stop` ends them in
order: jobs first, then ``slurmd`` (killed if it ignores SIGTERM, as it does while job
steps run), ``slurmctld``, ``munged``. Client commands find the cluster through the
``SLURM_CONF`` environment variable (:attr:`SlurmCluster.env`).

It needs root and Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge``;
without them it raises :class:`SlurmUnavailable` with the reason and the logs' tails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
STARTUP_TIMEOUT = 60.0
STOP_GRACE = 10.0
#: CPUs the node offers (the fixture's jobs fill it with this many).
NODE_CPUS = 2


class SlurmUnavailable(RuntimeError):
    """The test Slurm could not start; the message carries the reason and the logs."""


@dataclass
class SlurmCluster:
    root: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment in which Slurm's client commands reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster (its output as text)."""
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def log_tails(self, lines: int = 20) -> str:
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def node_state(self) -> str:
        result = self.run("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return result.stdout.strip()

    def job_states(self) -> dict[str, str]:
        """The jobs squeue knows, by id, with their state (finished ones included)."""
        result = self.run("squeue", "--noheader", "--states=all", "--format=%i %T")
        return dict(line.split() for line in result.stdout.splitlines() if line.strip())

    def cancel_all_jobs(self) -> None:
        """Cancel every job and wait until none is pending, running or completing."""
        for job_id in self.job_states():
            self.run("scancel", "--full", "--quiet", job_id, check=False)
        deadline = time.monotonic() + STOP_GRACE * 3
        while time.monotonic() < deadline:
            states = self.job_states().values()
            if not any(state in ("PENDING", "RUNNING", "COMPLETING") for state in states):
                return
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if "slurmctld" in self.processes:
                self.cancel_all_jobs()
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is not None:
                _end(process)
        shutil.rmtree(self.root, ignore_errors=True)


def _end(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after a grace (slurmd ignores SIGTERM while steps run)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_GRACE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _owned_directory(path: Path, account: str, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, account, account)
    path.chmod(mode)
    return path


def slurm_conf(root: Path, controller_port: int, node_port: int) -> str:
    return f"""\
ClusterName=gilhubtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
SlurmctldPort={controller_port}
SlurmdPort={node_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster() -> SlurmCluster:
    """Start munged, slurmctld and slurmd; return once the node is idle."""
    missing = [name for name in COMMANDS if shutil.which(name) is None]
    if missing:
        raise SlurmUnavailable(
            f"not installed: {', '.join(missing)} (apt-get install slurmctld slurmd"
            " slurm-client munge)"
        )
    if os.geteuid() != 0:
        raise SlurmUnavailable("the test Slurm runs its daemons as root, slurm and munge")
    # /tmp, not pytest's 0700 directories: the slurm and munge accounts and the jobs' own
    # accounts must reach their files.
    root = Path(tempfile.mkdtemp(prefix="gilhub-slurm-"))
    root.chmod(0o755)
    cluster = SlurmCluster(root)
    try:
        _start_daemons(cluster)
    except SlurmUnavailable:
        cluster.stop()
        raise
    except Exception as error:
        logs = cluster.log_tails()
        cluster.stop()
        raise SlurmUnavailable(f"Slurm did not start ({error}):\n{logs}") from error
    return cluster


def _start_daemons(cluster: SlurmCluster) -> None:
    root = cluster.root
    for name in ("log", "run", "spool"):
        (root / name).mkdir(mode=0o755)
    _owned_directory(root / "state", "slurm")
    munge = _owned_directory(root / "munge", "munge", 0o755)
    shutil.chown(root / "log", "slurm", "slurm")  # slurmctld writes its log as slurm
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    cluster.conf.write_text(slurm_conf(root, _free_port(), _free_port()))
    cluster.conf.chmod(0o644)
    munge_log = root / "log" / "munged.log"
    munge_log.touch()
    shutil.chown(munge_log, "munge", "munge")
    cluster.processes["munged"] = _spawn(
        cluster,
        [
            "runuser", "-u", "munge", "--", "munged", "--foreground", "--force",
            f"--socket={munge}/munge.socket", f"--key-file={key}",
            f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/munged.seed",
            f"--log-file={munge_log}",
        ],
    )  # fmt: skip
    _wait_for(lambda: (munge / "munge.socket").exists(), cluster, "munged's socket")
    cluster.processes["slurmctld"] = _spawn(cluster, ["slurmctld", "-D", "-i"])
    _wait_for(lambda: cluster.node_state() != "", cluster, "slurmctld to answer")
    cluster.processes["slurmd"] = _spawn(cluster, ["slurmd", "-D", "-N", "localhost"])
    _wait_for(lambda: cluster.node_state() == "idle", cluster, "the node to be idle")


def _spawn(cluster: SlurmCluster, command: list[str]) -> subprocess.Popen:
    name = command[0] if command[0] != "runuser" else command[4]
    output = open(cluster.root / "log" / f"{name}.out.log", "ab")  # noqa: SIM115
    with output:
        return subprocess.Popen(
            command,
            env=cluster.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(condition, cluster: SlurmCluster, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not condition():
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise SlurmUnavailable(
                    f"{name} exited ({process.returncode}) while waiting for {what}:\n"
                    + cluster.log_tails()
                )
        if time.monotonic() > deadline:
            raise SlurmUnavailable(f"timed out waiting for {what}:\n" + cluster.log_tails())
        time.sleep(0.1)
