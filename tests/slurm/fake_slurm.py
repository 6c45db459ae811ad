"""A stand-in Slurm for scale: ``sbatch``, ``squeue``, ``scancel`` and one "node".

``python fake_slurm.py STATE COMMAND ARGS…`` behaves as Slurm's ``COMMAND`` for the
SlurmSpawner, with every job's record in the directory STATE; ``python fake_slurm.py
STATE node`` is a single HTTP server standing in for every job's jupyter_server (it
answers ``GET …/api``, ``…/api/status`` and ``POST …/api/shutdown`` with each job's own
token). ``sbatch`` runs no script: it records the job as running and reports the node's
address to the hub with the job's token, as a server on a node does. Each ``squeue``
call is appended to ``STATE/squeue-calls`` (a monotonic time per line), so a test can
count them.

:class:`FakeSlurm` makes the directory and the command wrappers, and runs the node.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()


class FakeSlurm:
    """The state directory, wrappers named sbatch/squeue/scancel, and the node process."""

    def __init__(self, state: Path) -> None:
        self.state = state
        (state / "jobs").mkdir(parents=True)
        self.bin = state / "bin"
        self.bin.mkdir()
        for command in ("sbatch", "squeue", "scancel"):
            wrapper = self.bin / command
            # -S: no site-packages, a quicker start (this script needs the standard library)
            wrapper.write_text(
                f'#!/bin/sh\nexec {sys.executable} -S {SCRIPT} {state} {command} "$@"\n'
            )
            wrapper.chmod(0o755)
        self.node: subprocess.Popen | None = None

    def command(self, name: str) -> list[str]:
        return [str(self.bin / name)]

    def start_node(self) -> None:
        self.node = subprocess.Popen([sys.executable, str(SCRIPT), str(self.state), "node"])
        deadline = time.monotonic() + 30
        while not (self.state / "node-port").exists():
            if time.monotonic() > deadline or self.node.poll() is not None:
                raise RuntimeError("the fake node did not start")
            time.sleep(0.05)

    def stop_node(self) -> None:
        if self.node is not None:
            self.node.terminate()
            self.node.wait(10)

    def squeue_calls(self, since: float = 0.0, until: float = float("inf")) -> int:
        calls = self.state / "squeue-calls"
        if not calls.exists():
            return 0
        times = [float(line) for line in calls.read_text().split()]
        return sum(1 for moment in times if since <= moment < until)

    def job_state(self, user_name: str) -> str:
        """The state of the user's latest job (RUNNING, COMPLETED, CANCELLED)."""
        job_id = (self.state / "jobs" / f"{user_name}.user").read_text()
        return job_record(self.state, job_id)["state"]


def job_record(state: Path, job_id: str) -> dict:
    return json.loads((state / "jobs" / f"{job_id}.json").read_text())


def write_job(state: Path, job_id: str, record: dict) -> None:
    path = state / "jobs" / f"{job_id}.json"
    path.with_suffix(".tmp").write_text(json.dumps(record))
    path.with_suffix(".tmp").replace(path)


def sbatch(state: Path) -> None:
    sys.stdin.read()  # the batch script: nothing to run
    with open(state / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = state / "last-job-id"
        job_id = str(int(counter.read_text()) + 1 if counter.exists() else 1)
        counter.write_text(job_id)
    token, user = os.environ["JUPYTER_TOKEN"], os.environ["GILHUB_USER"]
    write_job(state, job_id, {"user": user, "token": token, "state": "RUNNING"})
    (state / "jobs" / f"{user}.user").write_text(job_id)
    port = int((state / "node-port").read_text())
    report = urllib.request.Request(  # noqa: S310 (the hub's URL)
        os.environ["GILHUB_ADDRESS_URL"],
        data=json.dumps({"host": "127.0.0.1", "port": port}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(report, timeout=30).close()  # noqa: S310 (the hub's URL)
    print(job_id)


def squeue(state: Path, args: list[str]) -> None:
    with open(state / "squeue-calls", "a") as calls:
        calls.write(f"{time.monotonic()}\n")
    jobs = next(arg for arg in args if arg.startswith("--jobs=")).split("=", 1)[1]
    for job_id in jobs.split(","):
        if (state / "jobs" / f"{job_id}.json").exists():
            record = job_record(state, job_id)
            print(f"{job_id}|{record['state']}|None|localhost|0")


def scancel(state: Path, args: list[str]) -> None:
    for job_id in args:
        if (state / "jobs" / f"{job_id}.json").exists():
            write_job(state, job_id, {**job_record(state, job_id), "state": "CANCELLED"})


def node(state: Path) -> None:
    """One HTTP server answering for every job's server."""

    class Handler(BaseHTTPRequestHandler):
        def job(self) -> tuple[str, str] | None:
            """(job id, path below the server's base URL) if the token is the job's."""
            parts = self.path.split("/")  # /user/NAME/api[/...]
            index = state / "jobs" / f"{parts[2] if len(parts) > 2 else ''}.user"
            if not index.exists():
                return None
            job_id = index.read_text()
            record = job_record(state, job_id)
            token = self.headers.get("Authorization") == f"token {record['token']}"
            if record["state"] == "RUNNING" and token:
                return job_id, "/".join(parts[3:])
            return None

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            found = self.job()
            self.answer(200 if found and found[1] in ("api", "api/status") else 403)

        def do_POST(self) -> None:  # noqa: N802
            found = self.job()
            if found and found[1] == "api/shutdown":
                write_job(state, found[0], {**job_record(state, found[0]), "state": "COMPLETED"})
            self.answer(200 if found else 403)

        def answer(self, status: int) -> None:
            body = b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    (state / "node-port.tmp").write_text(str(server.server_address[1]))
    (state / "node-port.tmp").replace(state / "node-port")
    server.serve_forever()


if __name__ == "__main__":
    state_dir, command, *arguments = Path(sys.argv[1]), sys.argv[2], *sys.argv[3:]
    if command == "sbatch":
        sbatch(state_dir)
    elif command == "squeue":
        squeue(state_dir, arguments)
    elif command == "scancel":
        scancel(state_dir, arguments)
    else:
        node(state_dir)


async def stop_in_chunks(hub: Any, users: list[Any], at_once: int = 20) -> None:
    """Stop the users' servers a chunk at a time: two hundred at once exhaust the hub's
    database pool (its shutdown with ``cleanup_servers`` stops them all at once)."""
    for first in range(0, len(users), at_once):
        chunk = users[first : first + at_once]
        await asyncio.gather(*(hub.servers.stop(user) for user in chunk))


def fake_slurm_config(fake: FakeSlurm, poll_interval: float) -> Any:
    """A hub configuration whose SlurmSpawner uses ``fake``'s commands."""
    from traitlets.config import Config  # (the commands run without site-packages)

    config = Config()
    config.GilHub.spawner_class = "gilhub.spawner.slurm.SlurmSpawner"
    config.SlurmSpawner.sbatch = fake.command("sbatch")
    config.SlurmSpawner.scancel = fake.command("scancel")
    config.SlurmSpawner.allow_root = True  # no system account per simulated user
    config.SlurmQueue.squeue = fake.command("squeue")
    config.SlurmQueue.poll_interval = poll_interval
    # the hub checks its servers more often than the queue may call squeue
    config.ServerManager.poll_interval = poll_interval / 4
    config.ServerManager.concurrent_spawn_limit = 8
    config.ServerManager.spawn_queue_limit = 1000
    return config
