"""The spawner and ServerManager with a real hub, real PostgreSQL and real jupyter_servers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gilhub.servers import ServerManager, ServerState
from gilhub.spawner.base import INHERITED_VARIABLES, private_jupyter_dirs
from gilhub.spawner.isolation import IsolationUnavailable
from gilhub.spawner.local import LocalProcessSpawner
from gilhub.spawner.process import start_process, terminate_tree
from gilhub.spawner.system_user import SystemUserSpawner
from gilhub.users import User
from tests.hub.servers_harness import (
    add_person,
    server_python,
    start_and_wait,
    start_hub,
    stop_hub,
    using_spawner,
    wait_for_state,
)


@pytest.fixture(scope="module")
async def hub(database_url, tmp_path_factory):
    hub = await start_hub(database_url, tmp_path_factory.mktemp("hub"))
    hub.servers.poll_interval = 0.2
    try:
        yield hub
    finally:
        await stop_hub(hub)


async def server_row(hub, user_id: int):
    async with hub.db.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM servers WHERE user_id = :id"), {"id": user_id}
        )
        return result.mappings().first()


def server_process(hub, name: str) -> psutil.Process:
    pid = hub.servers._servers[name].spawner.get_state()["pid"]
    return psutil.Process(pid)


async def test_start_reports_progress_and_records_the_server(hub):
    alice = await add_person(hub, "alice")
    events = await start_and_wait(hub, alice.user)

    assert events[-1]["ready"] and not events[-1]["failed"]
    assert events[-1]["url"] == "/user/alice/"
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress) and progress[-1] == 100
    status = hub.servers.status("alice")
    assert status.state == ServerState.RUNNING and status.error is None
    upstream = hub.servers.upstream("alice")
    row = await server_row(hub, alice.user.id)
    assert row["state"] == ServerState.RUNNING and row["port"] == upstream.port
    assert row["token_hash"] == hashlib.sha256(upstream.token.encode()).hexdigest()
    assert row["token_nonce"] and upstream.token not in str(dict(row))
    # the local spawner finds its process again by pid and start time: its own state
    assert row["spawner_state"]["pid"] == server_process(hub, "alice").pid


async def test_the_server_refuses_requests_without_its_token(hub):
    upstream = hub.servers.upstream("alice")
    url = f"http://127.0.0.1:{upstream.port}/user/alice/api/contents"
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 403
        bad = await client.get(url, headers={"Authorization": "token wrong"})
        assert bad.status_code == 403
        good = await client.get(url, headers={"Authorization": f"token {upstream.token}"})
        assert good.status_code == 200


async def test_secrets_travel_only_in_the_environment(hub):
    process = server_process(hub, "alice")
    upstream = hub.servers.upstream("alice")
    hub_password = hub.db_url.password
    command_line = " ".join(process.cmdline())
    assert upstream.token not in command_line
    assert hub_password not in command_line
    environment = process.environ()
    assert environment["JUPYTER_TOKEN"] == upstream.token
    user_url = make_url(environment["GILHUB_DB_URL"])
    assert user_url.username == hub.servers._servers["alice"].user.db_role
    assert user_url.username != hub.db_url.username
    assert user_url.password not in command_line
    assert not any(hub_password in value for value in environment.values())
    # Only an allow-list of the hub's environment is passed on, plus the server's own.
    own = {"JUPYTER_TOKEN", "GILHUB_DB_URL", "GILHUB_USER", "GILHUB_HUB_PREFIX", "JUPYTERHUB_USER"}
    own |= {"GILHUB_UPLOAD_CHUNK_MAX_AGE", "GILHUB_ACTIVITY"}  # settings, not secrets
    own |= set(private_jupyter_dirs(hub.servers._servers["alice"].spawner.home()))
    assert set(environment) <= set(INHERITED_VARIABLES) | own
    assert "--ServerApp.ip=127.0.0.1" in process.cmdline()


async def test_start_is_idempotent_while_running(hub):
    alice = hub.servers._servers["alice"].user
    port = hub.servers.upstream("alice").port
    await hub.servers.start(alice)
    assert hub.servers.status("alice").state == ServerState.RUNNING
    assert hub.servers.upstream("alice").port == port


async def test_users_processes_run_below_the_hubs_cpu_priority(hub):
    """The server and the kernels it starts yield the CPU to the hub and PostgreSQL
    (``Spawner.nice``), so a busy machine still gets the hub's answers quickly."""
    spawner = hub.servers._servers["alice"].spawner
    assert spawner.nice == 10  # the default
    upstream = hub.servers.upstream("alice")
    async with httpx.AsyncClient(headers={"Authorization": f"token {upstream.token}"}) as client:
        kernels = f"http://127.0.0.1:{upstream.port}/user/alice/api/kernels"
        created = await client.post(kernels)
        assert created.status_code == 201
        server = server_process(hub, "alice")
        tree = [server, *server.children(recursive=True)]
        assert len(tree) >= 2  # the server (in its sandbox) and the kernel
        expected = min(19, psutil.Process().nice() + spawner.nice)
        assert {process.nice() for process in tree} == {expected}
        await client.delete(f"{kernels}/{created.json()['id']}")


@pytest.mark.parametrize("nice", [0, 7])
async def test_a_started_process_runs_nice_steps_below_the_hub(tmp_path, nice):
    child = await start_process(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={},
        cwd=tmp_path,
        log_path=tmp_path / "log",
        nice=nice,
    )
    process = psutil.Process(child.pid)
    try:
        # the command itself runs once `nice` has set the priority and exec'd it
        async with asyncio.timeout(30):
            while process.cmdline()[:1] != [sys.executable]:
                await asyncio.sleep(0.01)
        assert process.nice() == min(19, psutil.Process().nice() + nice)
    finally:
        await terminate_tree(process, child=child, grace=1)


async def test_stop_ends_the_whole_process_tree(hub):
    alice = hub.servers._servers["alice"].user
    upstream = hub.servers.upstream("alice")
    async with httpx.AsyncClient(headers={"Authorization": f"token {upstream.token}"}) as client:
        created = await client.post(f"http://127.0.0.1:{upstream.port}/user/alice/api/kernels")
        assert created.status_code == 201
    server = server_process(hub, "alice")
    tree = [server, *server.children(recursive=True)]
    assert len(tree) >= 2  # the server and its kernel

    await hub.servers.stop(alice)

    assert hub.servers.status("alice").state == ServerState.STOPPED
    assert hub.servers.upstream("alice") is None
    assert await server_row(hub, alice.id) is None
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []
    assert [e async for e in hub.servers.progress("alice")][-1]["failed"]


async def test_configured_args_take_precedence_over_the_spawners_own(hub):
    user = User(id=0, name="zoe", is_admin=False, db_role=None)
    args = ["--ServerApp.open_browser=False", "--ServerApp.root_dir=/elsewhere", "--debug"]
    spawner = LocalProcessSpawner(hub=hub, user=user, args=args, isolation="none", allow_root=True)
    await spawner.prepare()
    command_line = spawner.get_args(8888)
    assert command_line[-3:] == args
    assert [a for a in command_line if a.startswith("--ServerApp.open_browser")] == [args[0]]
    assert [a for a in command_line if a.startswith("--ServerApp.root_dir")] == [args[1]]
    assert "--ServerApp.ip=127.0.0.1" in command_line
    assert "--ServerApp.base_url=/user/zoe/" in command_line


@pytest.mark.parametrize("isolation", ["none", "auto"])
async def test_each_user_has_private_jupyter_dirs(hub, isolation):
    """Signing secret, signatures, config, workspaces, settings, history, kernel files:
    never shared between people, whether or not they share an OS account."""
    envs = []
    for name in ("alice", "bob"):
        user = User(id=0, name=name, is_admin=False, db_role=None)
        spawner = LocalProcessSpawner(
            hub=hub, user=user, parent=hub, isolation=isolation, allow_root=True
        )
        await spawner.prepare()
        envs.append(spawner.get_env())
    for variable in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                     "JUPYTERLAB_SETTINGS_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):  # fmt: skip
        alice_dir, bob_dir = (Path(env[variable]) for env in envs)
        assert alice_dir.is_relative_to(envs[0]["HOME"]) and bob_dir.is_relative_to(envs[1]["HOME"])
        assert not alice_dir.is_relative_to(envs[1]["HOME"])
        assert not bob_dir.is_relative_to(envs[0]["HOME"])


class FirstPortTaken(LocalProcessSpawner):
    """Picks, first, a port that another socket holds (as if taken after the pick)."""

    taken_port = 0
    picks: list[int] = []

    def pick_port(self) -> int:
        port = self.taken_port if not self.picks else super().pick_port()
        self.picks.append(port)
        return port


async def test_a_port_already_taken_means_another_is_used(hub):
    bob = await add_person(hub, "bob")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        FirstPortTaken.taken_port = holder.getsockname()[1]
        with using_spawner(hub, FirstPortTaken):
            events = await start_and_wait(hub, bob.user)
    assert events[-1]["ready"], events
    assert FirstPortTaken.picks[0] == FirstPortTaken.taken_port
    assert hub.servers.upstream("bob").port != FirstPortTaken.taken_port
    assert any("port was taken" in event["message"] for event in events)
    await hub.servers.stop(bob.user)


class FailingCommand(LocalProcessSpawner):
    cmd = [server_python(), "-c", "print('gilhub-test: cannot start <b>'); raise SystemExit(3)"]


async def test_a_failing_server_command_is_a_clear_error_with_the_log_tail(hub):
    carol = await add_person(hub, "carol")
    with using_spawner(hub, FailingCommand):
        events = await start_and_wait(hub, carol.user)
    assert events[-1]["failed"] and not events[-1]["ready"]
    assert "code 3" in events[-1]["message"]
    status = hub.servers.status("carol")
    assert status.state == ServerState.STOPPED and "code 3" in status.error
    assert "gilhub-test: cannot start <b>" in status.log_tail
    assert await server_row(hub, carol.user.id) is None
    log_file = Path(hub.data_dir) / "logs" / "carol.log"
    assert "cannot start" in log_file.read_text()


class NeverAnswers(LocalProcessSpawner):
    cmd = [
        server_python(),
        "-c",
        "import time; print('gilhub-test: sleeping', flush=True); time.sleep(600)",
    ]
    start_timeout = 1.5


async def test_a_server_that_never_answers_times_out_and_is_ended(hub):
    dave = await add_person(hub, "dave")
    with using_spawner(hub, NeverAnswers):
        events = await start_and_wait(hub, dave.user)
    assert events[-1]["failed"]
    assert "did not answer within 1.5 seconds" in events[-1]["message"]
    assert "gilhub-test: sleeping" in hub.servers.status("dave").log_tail
    assert not [
        process
        for process in psutil.process_iter(["cmdline"])
        if "gilhub-test: sleeping" in " ".join(process.info["cmdline"] or [])
    ]


async def test_a_server_that_dies_is_noticed_and_shown_stopped(hub):
    erin = await add_person(hub, "erin")
    assert (await start_and_wait(hub, erin.user))[-1]["ready"]
    server_process(hub, "erin").kill()

    await wait_for_state(hub, "erin", ServerState.STOPPED)
    status = hub.servers.status("erin")
    assert "stopped unexpectedly" in status.error
    assert await server_row(hub, erin.user.id) is None
    # ... and can be started again
    assert (await start_and_wait(hub, erin.user))[-1]["ready"]
    assert hub.servers.status("erin").error is None
    await hub.servers.stop(erin.user)


async def test_a_restarted_hub_readopts_live_servers_and_forgets_dead_ones(hub):
    frank = await add_person(hub, "frank")
    grace = await add_person(hub, "grace")
    assert (await start_and_wait(hub, frank.user))[-1]["ready"]
    assert (await start_and_wait(hub, grace.user))[-1]["ready"]
    frank_upstream = hub.servers.upstream("frank")
    frank_pid = server_process(hub, "frank").pid
    grace_process = server_process(hub, "grace")

    old_manager = hub.servers
    await old_manager.shutdown()  # the hub exits; servers are left running
    grace_process.kill()
    grace_process.wait(10)
    hub.servers = ServerManager(hub=hub, parent=hub)
    hub.servers.poll_interval = 0.2
    await hub.servers.restore()  # returns at once; the servers are checked in the background
    await wait_for_state(hub, "frank", ServerState.RUNNING)
    await wait_for_state(hub, "grace", ServerState.STOPPED)

    assert hub.servers.status("frank").state == ServerState.RUNNING
    assert hub.servers.upstream("frank") == frank_upstream
    assert server_process(hub, "frank").pid == frank_pid
    assert hub.servers.status("grace").state == ServerState.STOPPED
    assert await server_row(hub, grace.user.id) is None
    # the adopted server (not the hub's child) is still watched and stoppable
    await hub.servers.stop(frank.user)
    assert not psutil.pid_exists(frank_pid) or psutil.Process(frank_pid).status() == "zombie"
    assert await server_row(hub, frank.user.id) is None


async def test_idle_servers_are_culled_when_enabled(hub):
    heidi = await add_person(hub, "heidi")
    hub.servers.cull_idle_timeout = 1
    try:
        assert (await start_and_wait(hub, heidi.user))[-1]["ready"]
        await wait_for_state(hub, "heidi", ServerState.STOPPED)
    finally:
        hub.servers.cull_idle_timeout = 0
    assert hub.servers.status("heidi").error is None
    assert await server_row(hub, heidi.user.id) is None


async def test_progress_of_a_server_never_started(hub):
    events = [event async for event in hub.servers.progress("nobody")]
    assert len(events) == 1 and events[0]["failed"]


async def test_system_user_spawner_runs_the_process_as_that_user(hub, tmp_path):
    """As root: the account ``daemon`` (in every Debian image) stands in for a lab member."""
    daemon = User(id=0, name="daemon", is_admin=False, db_role=None)
    spawner = SystemUserSpawner(hub=hub, user=daemon, parent=hub, account_prefix="")
    await spawner.prepare()
    account_user, account_group = spawner.process_identity()
    assert (account_user, account_group) == ("daemon", 1)
    env = spawner.get_env()
    assert env["HOME"] == "/usr/sbin" and env["USER"] == env["LOGNAME"] == "daemon"
    assert spawner.home() == Path("/usr/sbin")

    child = await start_process(
        ["/bin/sleep", "60"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=spawner.home(),
        log_path=tmp_path / "daemon.log",
        user=account_user,
        group=account_group,
    )
    process = psutil.Process(child.pid)
    try:
        assert process.uids().real == 1 and process.gids().real == 1
        assert process.cwd() == "/usr/sbin"
        status = Path(f"/proc/{child.pid}/status").read_text()
        groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
        assert groups.split()[1:] == []  # none of the hub's (root's) supplementary groups
    finally:
        await terminate_tree(process, child=child, grace=2)
    assert child.returncode is not None


async def test_the_root_account_is_never_used_without_allow_root(hub):
    root = User(id=0, name="root", is_admin=False, db_role=None)
    spawner = SystemUserSpawner(hub=hub, user=root, parent=hub, account_prefix="")
    with pytest.raises(IsolationUnavailable, match="is root"):
        await spawner.prepare()
