"""Notebook runs executed as jobs of a real single-node Slurm (fixtures in conftest.py).

With ``SlurmSpawner`` a run's worker is submitted as a Slurm job of its user's (the
spawner's ``start_job``), and watched, cancelled and found again after a restart
through the hub's one Slurm queue. A module of its own: its hub must be the only one
on its database (hubs share the runs' queue).
"""

from __future__ import annotations

import asyncio
import json
import pwd
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nbformat
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets.config import Config

from gilhub.app import GilHub
from gilhub.contents import roles
from gilhub.runs.access import DB_URL_ENV
from gilhub.runs.service import Runs
from gilhub.servers import ServerManager
from tests.hub.servers_harness import (
    TEST_ACCOUNT_PREFIX,
    Person,
    add_person,
    hub_url,
    server_python,
    stop_hub,
)
from tests.hub.test_cli import gilhub
from tests.runs.helpers import PATIENCE_SECONDS, RunsUser, notebook
from tests.slurm.conftest import node_filled, slurm_hub_config, start_slurm_hub, user_account


def runs_hub_config() -> Config:
    config = slurm_hub_config()
    config.Runs.worker_cmd = [server_python(), "-m", "gilhub.runs.worker"]
    config.Runs.stop_grace = 5.0
    return config


@pytest.fixture(scope="module")
async def runs_hub(slurm, tmp_path_factory) -> AsyncIterator[GilHub]:
    hub = await start_slurm_hub(tmp_path_factory.mktemp("slurm-runs-hub"), runs_hub_config())
    try:
        yield hub
    finally:
        await stop_hub(hub)


class Runner(RunsUser):
    """A person of the hub with a system account, starting runs over the API."""

    def __init__(self, hub: GilHub, person: Person, role: str) -> None:
        self.hub, self.user, self.role = hub, person.user, role
        self.headers = {"Authorization": f"token {person.token}"}

    @property
    def db(self) -> AsyncEngine:
        return self.hub.db

    async def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async with httpx.AsyncClient(headers=self.headers, timeout=60) as client:
            return await client.request(method, hub_url(self.hub, path), **kwargs)


async def runner(hub: GilHub, name: str) -> Runner:
    await user_account(name)
    person = await add_person(hub, name)
    return Runner(hub, person, await roles.ensure_user_role(hub.db, name))


def job_of(hub: GilHub, run: dict) -> str:
    """The Slurm job the hub watches as the run's worker."""
    return hub.runs._jobs[run["id"]].spawner.job_id


def job_output(name: str, job_id: str) -> Path:
    """Where the job of NAME's account writes its output (SlurmSpawner.output's default)."""
    home = pwd.getpwnam(f"{TEST_ACCOUNT_PREFIX}{name}").pw_dir
    return Path(home, f".gilhub-slurm-{job_id}.log")


async def test_a_parameterised_run_executes_as_a_slurm_job_with_its_output_and_messages(
    slurm, runs_hub
):
    hana = await runner(runs_hub, "hana")
    source = notebook(
        "import os\nprint(os.environ['SLURM_JOB_ID'], os.environ['USER'], x * 2)",
        parameters="x = 1",
    )
    await hana.save("mod/notebooks/calc.ipynb", source)
    run = await hana.start("mod/notebooks/calc.ipynb", parameters={"x": 21})
    running = await hana.wait_for(run, lambda model: model["status"] != "queued")
    job_id = job_of(runs_hub, run) if running["status"] == "running" else None

    done = await hana.finished(run)
    assert done["status"] == "completed", done
    assert done["cells_done"] == done["cells_total"]
    printed = [m["text"] for m in done["messages"] if m["level"] == "INFO"]
    job_line = next(text for text in printed if text.strip().endswith(" 42"))
    ran_in_job, ran_as, _ = job_line.split()
    assert ran_as == f"{TEST_ACCOUNT_PREFIX}hana"  # the user's account, not root
    assert job_id is None or ran_in_job == job_id
    async with asyncio.timeout(PATIENCE_SECONDS):  # the worker said so, then ended
        while slurm.job_states()[ran_in_job] != "COMPLETED":
            await asyncio.sleep(0.2)
        while job_output("hana", ran_in_job).exists():  # a job that ended well leaves none
            await asyncio.sleep(0.2)

    output = nbformat.reads((await hana.load(done["output_path"])).decode(), as_version=4)
    assert done["output_path"].startswith("temp/mod/notebooks/calc ")
    assert "42" in output.cells[-1].outputs[0]["text"]


async def test_cancelling_a_run_interrupts_its_slurm_job_which_keeps_the_partial_output(
    slurm, runs_hub
):
    ines = await runner(runs_hub, "ines")
    run = await ines.start_sleepy_run()
    job_id = job_of(runs_hub, run)
    assert slurm.job_states()[job_id] == "RUNNING"
    # the token and database URL went by environment only: the script names, never holds them
    script = slurm.run("scontrol", "write", "batch_script", job_id, "-").stdout
    assert runs_hub.runs.token_env in script and DB_URL_ENV in script  # in --export=
    assert "postgresql://" not in script and "gilhub.runs.worker" in script

    output = job_output("ines", job_id)
    assert output.stat().st_uid == pwd.getpwnam(f"{TEST_ACCOUNT_PREFIX}ines").pw_uid
    assert stat.S_IMODE(output.stat().st_mode) == 0o600

    await ines.cancel(run)
    assert slurm.job_states().get(job_id) not in ("PENDING", "RUNNING", "COMPLETING")
    await ines.assert_partial_output_kept(run)
    assert output.exists()  # kept: the job did not end well


async def test_a_run_waiting_for_a_full_node_says_why_in_its_model_messages_and_page(
    slurm, runs_hub
):
    mia = await runner(runs_hub, "mia")
    await mia.save("quick.ipynb", notebook("print('ran')"))
    async with node_filled(slurm):
        run = await mia.start("quick.ipynb")
        waiting = await mia.wait_for(run, lambda model: model["waiting"] is not None)
        assert slurm.job_states()[job_of(runs_hub, run)] == "PENDING"
        said = await mia.wait_for(run, lambda model: "(Resources)" in (model["waiting"] or ""))
        assert "waits in the Slurm queue: waiting for resources" in said["waiting"]
        assert said["status"] == "running"  # for the hub: its worker is Slurm's to start
        told = await mia.wait_for(
            run, lambda model: any(m["text"] == said["waiting"] for m in model["messages"])
        )
        assert told["waiting"] == said["waiting"]
        page = await mia.request("GET", f"/hub/runs/{run['id']}")
        assert page.status_code == 200 and said["waiting"] in page.text
        assert waiting["waiting"].startswith(f"Your job {job_of(runs_hub, run)} ")
    done = await mia.finished(run)
    assert done["status"] == "completed", done
    assert done["waiting"] is None


async def test_removing_a_user_scancels_their_run_job(slurm, runs_hub):
    kai = await runner(runs_hub, "kai")
    await kai.save("sleepy.ipynb", notebook("import time\ntime.sleep(600)"))
    run = await kai.start("sleepy.ipynb")
    await kai.wait_for(run, lambda model: model["current_cell"] == 0)
    job_id = job_of(runs_hub, run)

    await runs_hub.accounts.remove(kai.user)
    assert slurm.job_states().get(job_id) not in ("PENDING", "RUNNING", "COMPLETING")


async def test_removing_a_user_from_the_command_line_without_a_hub_scancels_their_run_job(
    slurm, tmp_path
):
    data_dir = tmp_path / "data"
    hub = await start_slurm_hub(data_dir, runs_hub_config())
    try:
        lea = await runner(hub, "lea")
        run = await lea.start_sleepy_run()
        job_id = job_of(hub, run)
    finally:
        await stop_hub(hub)  # the run's job goes on without its hub
    assert slurm.job_states()[job_id] == "RUNNING"

    (tmp_path / "gilhub_config.py").write_text(
        'c.GilHub.spawner_class = "gilhub.spawner.slurm.SlurmSpawner"\n'
        f"c.SlurmSpawner.account_prefix = {TEST_ACCOUNT_PREFIX!r}\n"
        "c.SlurmQueue.poll_interval = 0.5\n"
    )
    removed = await gilhub("user", "remove", "lea", f"--data-dir={data_dir}", cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert slurm.job_states().get(job_id) not in ("PENDING", "RUNNING", "COMPLETING")


async def test_a_restarted_hub_readopts_a_running_run_job(slurm, runs_hub, tmp_path):
    hub = runs_hub
    jon = await runner(hub, "jon")
    flag = Path("/tmp", f"gilhub-run-flag-{tmp_path.name}")  # the job's node shares /tmp
    waiting = "import os, time\nwhile not os.path.exists(flag):\n    time.sleep(0.2)"
    await jon.save("waits.ipynb", notebook(waiting, "print('went on')", parameters="flag = ''"))
    run = await jon.start("waits.ipynb", parameters={"flag": str(flag)})
    await jon.wait_for(run, lambda model: model["status"] == "running")
    job_id = job_of(hub, run)

    # new runs and servers services (and with them a new Slurm queue), from the database
    await hub.runs.stop()
    await hub.servers.shutdown()
    hub.servers = ServerManager(hub=hub, parent=hub)
    await hub.servers.restore()
    hub.runs = Runs(hub)
    await hub.runs.restore()
    assert job_of(hub, run) == job_id  # adopted, not failed
    assert json.loads(json.dumps(hub.runs._jobs[run["id"]].state()))["job_id"] == job_id

    try:
        flag.touch()
        done = await jon.finished(run)
    finally:
        flag.unlink(missing_ok=True)
    assert done["status"] == "completed", done
    assert any(m["text"].strip() == "went on" for m in done["messages"])
