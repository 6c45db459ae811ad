"""A run's worker runs as its user: same system account and sandbox as their server, their
database role; it ends when its user is removed; what it prints is copied, bounded."""

from __future__ import annotations

import asyncio
import json
import os
import pwd

import psutil
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from gilhub.contents import roles
from gilhub.db import create_engine
from gilhub.runs import query
from gilhub.runs.schema import messages, runs
from gilhub.spawner.accounts import account_name
from gilhub.spawner.jobs import ProcessJob
from tests.hub.conftest import RunningHub
from tests.hub.servers_harness import TEST_ACCOUNT_PREFIX
from tests.hub.test_cli import gilhub
from tests.runs.helpers import PATIENCE_SECONDS, Person, notebook, person

HUB_SECRET = "the hub's own secret"

# Prints what the run's kernel is and can reach, as JSON on its last line.
PROBE = """
import json, os

def attempt(path):
    try:
        with open(path, "rb") as file:
            return file.read().decode(errors="replace")
    except Exception as error:
        return "refused: " + type(error).__name__

print(json.dumps({
    "uid": os.getuid(),
    "home": os.environ["HOME"],
    "secret": attempt(SECRET_PATH),
    "hub_environ": attempt(f"/proc/{HUB_PID}/environ"),
    "database_url_in_kernel": "GILHUB_RUN_DB_URL" in os.environ,
}))
"""


def probe_notebook(hub: RunningHub) -> bytes:
    secret = hub.app.data_dir / "hub-secret.txt"
    secret.write_text(HUB_SECRET)
    secret.chmod(0o600)
    return notebook(f"SECRET_PATH = {str(secret)!r}\nHUB_PID = {os.getpid()}", PROBE)


async def probed(user: Person) -> dict:
    run = await user.run("probe.ipynb", probe_notebook(user.hub))
    assert run["status"] == "completed", run["error"]
    printed = [m["text"] for m in run["messages"] if m["text"].startswith('{"uid"')]
    assert printed, run["messages"]  # what the cell printed arrived as a message
    return json.loads(printed[-1])


def assert_ran_as(seen: dict, name: str) -> None:
    account = pwd.getpwnam(account_name(TEST_ACCOUNT_PREFIX, name))
    assert seen["uid"] == account.pw_uid != 0
    assert seen["home"] == account.pw_dir
    assert seen["secret"].startswith("refused"), seen["secret"]
    assert seen["hub_environ"].startswith("refused"), seen["hub_environ"]
    assert seen["database_url_in_kernel"] is False


async def test_in_the_sandbox_a_run_executes_as_the_users_account_in_bwrap(hub):
    dave = await person(hub, "dave")
    await dave.save("slow.ipynb", notebook("import time\ntime.sleep(600)"))
    run = await dave.start("slow.ipynb")
    worker = await worker_of(hub, run)
    assert worker.name() == "bwrap" and "--unshare-pid" in worker.cmdline()
    await dave.api.post(f"/hub/api/runs/{run['id']}/cancel")
    assert_ran_as(await probed(dave), "dave")


async def worker_of(hub: RunningHub, run: dict) -> psutil.Process:
    """The run's worker process, once the hub has recorded it."""
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            async with hub.app.db.connect() as conn:
                recorded = await conn.execute(select(runs.c.worker).where(runs.c.id == run["id"]))
            worker = ProcessJob.find(recorded.scalar() or {})
            if worker is not None:
                return worker.process()
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("front_end", ["api", "command line"])
async def test_removing_a_user_mid_run_ends_the_worker_and_its_kernel(hub, workdir, front_end):
    name = "erin" if front_end == "api" else "erik"
    owner = await person(hub, name)
    await owner.save("forever.ipynb", notebook("import time\ntime.sleep(600)"))
    run = await owner.start("forever.ipynb")
    await owner.wait_for(run, lambda model: model["current_cell"] == 0)  # the kernel runs
    worker = await worker_of(hub, run)
    tree = [worker, *worker.children(recursive=True)]
    if front_end == "api":
        token = await hub.token_for(hub.admin_name)
        admin = hub.client(headers={"Authorization": f"token {token}"})
        removed = await admin.delete(f"/hub/api/users/{name}")
        assert removed.status_code == 204, removed.text
    else:  # the command line finds the worker by its recorded pid and start time
        removed = await gilhub("user", "remove", name, cwd=workdir)
        assert removed.returncode == 0, removed.stderr
    _, alive = await asyncio.to_thread(psutil.wait_procs, tree, timeout=PATIENCE_SECONDS)
    assert not alive


async def test_printed_output_reaches_the_messages_as_it_runs_but_bounded(hub):
    frank = await person(hub, "frank")
    hub.app.runs.max_streamed_bytes = 2_000
    try:
        await frank.save(
            "chatty.ipynb",
            notebook(
                "import sys, time\nprint('first words')\nprint('to stderr', file=sys.stderr)\n"
                "time.sleep(600)",
                "for i in range(200_000):\n    print('line', i)",
            ),
        )
        run = await frank.start("chatty.ipynb")
        expected = {("INFO", "first words"), ("WARNING", "to stderr")}
        heard = await frank.wait_for(
            run, lambda model: expected <= {(m["level"], m["text"]) for m in model["messages"]}
        )
        assert heard["status"] == "running"  # heard while the cell still runs
        await frank.api.post(f"/hub/api/runs/{run['id']}/cancel")
        run = await frank.run("chatty.ipynb", notebook("for i in range(200_000):\n    print(i)"))
    finally:
        hub.app.runs.max_streamed_bytes = 64 * 1024
    assert run["status"] == "completed"
    printed = [m["text"] for m in run["messages"] if m["level"] == "INFO" and m["text"][:1] == "0"]
    assert 0 < sum(len(text) for text in printed) <= 2_000
    assert any("Printed output beyond 2000 bytes" in m["text"] for m in run["messages"])


async def test_a_users_role_cannot_write_messages_into_another_users_run(hub):
    grace, heidi = await person(hub, "grace"), await person(hub, "heidi")
    heidis = await heidi.run("mine.ipynb", notebook("1"))
    password = await roles.issue_role_password(hub.app.db, grace.role)
    engine = create_engine(roles.user_database_url(hub.app.db_url, grace.role, password))
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError):  # row-level security: not her run
                await conn.execute(
                    insert(messages).values(
                        run_id=heidis["id"], owner=heidi.role, level="INFO", text="forged"
                    )
                )
    finally:
        await engine.dispose()


async def test_the_event_stream_is_woken_by_notifications_not_by_polling(hub):
    """With the periodic look made rare, a message the user's own role writes (as a worker
    does, outside the hub) still reaches the event stream: PostgreSQL NOTIFY woke it."""
    ivan = await person(hub, "ivan")
    await ivan.save("slow.ipynb", notebook("import time\ntime.sleep(600)"))
    run = await ivan.start("slow.ipynb")
    await ivan.wait_for(run, lambda model: model["current_cell"] == 0)
    hub.app.runs.events_keepalive = 3600.0
    password = await roles.issue_role_password(hub.app.db, ivan.role)
    engine = create_engine(roles.user_database_url(hub.app.db_url, ivan.role, password))
    try:
        async with ivan.api.stream("GET", f"/hub/api/runs/{run['id']}/events") as stream:
            lines = stream.aiter_lines()
            async with asyncio.timeout(PATIENCE_SECONDS):
                while not (first := await anext(lines)).startswith("data: "):
                    pass
                assert "from outside the hub" not in first
                async with engine.begin() as conn:
                    await query.add_message(
                        conn, run["id"], ivan.role, "INFO", "from outside the hub"
                    )
                async for line in lines:
                    if "from outside the hub" in line:
                        break
    finally:
        hub.app.runs.events_keepalive = 15.0
        await engine.dispose()
        await ivan.api.post(f"/hub/api/runs/{run['id']}/cancel")
