"""The spawner contract (gilhub/spawner/base.py) with a spawner that is not a local process.

:class:`BatchJobSpawner` shares no code with the local spawner: it submits the
server as a job of a toy batch system (``fake_batch_job.py``), keeps only a job
id, learns the server's address from the job's own report, and reads the job's
exit status and output from the batch system's records, as a Slurm spawner
would. The real hub's ServerManager drives it through start, readiness, a
proxied request, a hub restart and stop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import gilhub.servers.manager
import gilhub.servers.query
import gilhub.spawner.base
from gilhub.servers import ServerManager, ServerState, SpawnFailed
from gilhub.spawner.base import Spawner
from tests.hub.servers_harness import (
    add_person,
    hub_url,
    start_and_wait,
    start_hub,
    stop_hub,
    using_spawner,
    wait_for_state,
)

JOB_SCRIPT = Path(__file__).with_name("fake_batch_job.py")


class BatchJobSpawner(Spawner):
    """Submits the server as a job; a job id is all it remembers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id: str | None = None
        self._submission: asyncio.subprocess.Process | None = None

    @property
    def jobs(self) -> Path:
        """The batch system's records (in a real one: squeue, sacct, the job's output)."""
        return Path(self.hub.data_dir) / "batch-jobs"

    def record(self, suffix: str) -> Path:
        return self.jobs / f"{self.job_id}.{suffix}"

    async def start(self) -> tuple[str, int]:
        self.job_id = uuid.uuid4().hex
        self.jobs.mkdir(parents=True, exist_ok=True)
        with open(self.record("out"), "ab") as output:
            self._submission = await asyncio.create_subprocess_exec(
                sys.executable,
                str(JOB_SCRIPT),
                str(self.jobs),
                self.job_id,
                self.base_url,
                env=self.get_env(),
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        while not self.record("json").exists():  # the job reports where it listens
            status = await self.poll()
            if status is not None:
                raise SpawnFailed(f"The job ended with status {status} before it started.")
            await asyncio.sleep(0.05)
        address = json.loads(self.record("json").read_text())
        return address["host"], address["port"]

    async def poll(self) -> int | None:
        if self.job_id is None:
            return 0
        if self.record("exit").exists():
            return int(self.record("exit").read_text())
        return None

    async def stop(self) -> None:
        """Cancel the job (the batch system's own business: it knows the job's process)."""
        if self.job_id is None or await self.poll() is not None:
            return
        if self.record("json").exists():
            job_process = json.loads(self.record("json").read_text())["pid"]
            os.kill(job_process, signal.SIGTERM)
            for _ in range(100):
                if await self.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        if self._submission is not None:
            await self._submission.wait()

    def log_tail(self, lines: int = 40) -> list[str]:
        if self.job_id is None or not self.record("out").exists():
            return []
        return self.record("out").read_text().splitlines()[-lines:]

    def log_location(self) -> str | None:
        return str(self.record("out")) if self.job_id else None

    def get_state(self) -> dict[str, Any]:
        return {"job_id": self.job_id}

    def load_state(self, state: dict[str, Any]) -> None:
        self.job_id = state.get("job_id")


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory):
    hub = await start_hub(database_url, tmp_path_factory.mktemp("hub"))
    hub.servers.poll_interval = 0.2
    try:
        with using_spawner(hub, BatchJobSpawner):
            yield hub
    finally:
        await stop_hub(hub)


async def server_row(hub, user_id: int) -> dict | None:
    async with hub.db.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM servers WHERE user_id = :id"), {"id": user_id}
        )
        row = result.mappings().first()
    return dict(row) if row else None


async def test_a_batch_job_spawner_runs_through_start_proxy_restart_and_stop(hub):
    person = await add_person(hub, "jobuser")
    events = await start_and_wait(hub, person.user)
    assert events[-1]["ready"], events

    # the address is the one the job reported; the record holds the job id, no process id
    spawner = hub.servers._servers["jobuser"].spawner
    job = json.loads(spawner.record("json").read_text())
    upstream = hub.servers.upstream("jobuser")
    assert (upstream.host, upstream.port) == (job["host"], job["port"])
    row = await server_row(hub, person.user.id)
    assert row["spawner_state"] == {"job_id": spawner.job_id}
    assert "pid" not in row

    async with httpx.AsyncClient(headers=person.token_header) as client:
        proxied = await client.get(hub_url(hub, "/user/jobuser/some/page"))
        assert proxied.status_code == 200
        assert proxied.json() == {"echo": "/user/jobuser/some/page"}

        # the hub restarts: a new manager, new spawner instances, the job found again
        await hub.servers.shutdown()
        hub.servers = ServerManager(hub=hub, parent=hub)
        await hub.servers.restore()
        await wait_for_state(hub, "jobuser", ServerState.RUNNING)
        assert hub.servers.upstream("jobuser") == upstream
        assert hub.servers._servers["jobuser"].spawner is not spawner
        again = await client.get(hub_url(hub, "/user/jobuser/after/restart"))
        assert again.json() == {"echo": "/user/jobuser/after/restart"}

    await hub.servers.stop(person.user)
    assert hub.servers.status("jobuser").state == ServerState.STOPPED
    assert spawner.record("exit").read_text() == "0"  # it obeyed the REST shutdown
    assert await server_row(hub, person.user.id) is None


async def test_a_failed_job_shows_its_output_and_where_the_whole_log_is(hub):
    person = await add_person(hub, "failjob")
    hub.config.BatchJobSpawner.environment = {"FAKE_JOB_EXIT": "7"}
    try:
        events = await start_and_wait(hub, person.user)
    finally:
        del hub.config.BatchJobSpawner["environment"]
    assert events[-1]["failed"]
    assert "status 7" in events[-1]["message"]
    status = hub.servers.status("failjob")
    assert status.state == ServerState.STOPPED
    assert any("ended with status 7" in line for line in status.log_tail)
    spawner = hub.servers._servers["failjob"].spawner
    assert status.log_location == str(spawner.record("out"))


def test_the_server_manager_leaves_processes_to_the_spawner():
    """Nothing but a spawner may know that a server is a local process: no ``["pid"]``,
    no ``.pid`` in the manager or its queries."""
    for module in (gilhub.servers.manager, gilhub.servers.query):
        assert not re.search(r"""["']pid["']|\.pid\b""", inspect.getsource(module))


async def test_a_spawner_that_does_not_isolate_jobs_refuses_them_in_a_root_hub(
    hub, tmp_path, monkeypatch
):
    """A spawner without its own :meth:`Spawner.start_job` would run a notebook run's
    worker in the hub's account; in a root hub that would be a user's code running as root."""
    monkeypatch.setattr(gilhub.spawner.base, "hub_runs_as_root", lambda: True)
    person = await add_person(hub, "rootjob")
    spawner = BatchJobSpawner(hub=hub, user=person.user, parent=hub)
    with pytest.raises(PermissionError, match="never runs a user's code as root"):
        await spawner.start_job(["true"], env={}, log_path=tmp_path / "job.log")
