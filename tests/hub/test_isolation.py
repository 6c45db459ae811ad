"""Users kept apart at the OS level (issue 9, findings 1 and 2), with real hubs and kernels.

Two users' servers run behind a real hub with the embedded PostgreSQL in its data directory
(as the README's first start makes it). From Alice's kernel, through the kernel WebSocket,
each of these fails: reading the hub's data directory and its password file, reading Bob's
``/proc/PID/environ``, seeing Bob's processes, reading Bob's home, using Bob's server without
his token. Both ways this machine (and CI, both run as root) allows:

- ``root_hub``: the hub runs as root, in this process: each user's server runs as a system
  account of its own, in a bubblewrap sandbox (the default, ``isolation = "auto"``);
- ``unprivileged_hub``: the hub runs as an unprivileged account (created here), as a
  ``gilhub`` process: each server runs in a bubblewrap sandbox under the hub's account.

And finding 1 without a browser: a notebook with a script output, signed in Alice's server,
arrives in Bob's storage (byte for byte, or through the repository) and Bob's server reports
it untrusted, while Alice's own server trusts the same bytes.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nbformat
import psutil
import pytest
import websockets
from traitlets.config import Config

from gilhub.spawner.accounts import account_name, ensure_account, find_account
from gilhub.spawner.isolation import (
    AUTO,
    BOTH,
    NONE,
    SANDBOX,
    SYSTEM_USERS,
    Isolation,
    IsolationUnavailable,
    choose_isolation,
)
from tests.hub.conftest import RunningHub, running_hub
from tests.hub.servers_harness import TEST_ACCOUNT_PREFIX, execute, server_python

PEOPLE = ("alice", "bob")

# Runs in Alice's kernel; the names in capitals are set before it. Its value is JSON.
PROBE = """
import json, os, urllib.error, urllib.request

def attempt(action):
    try:
        return action()
    except Exception as error:
        return "refused: " + type(error).__name__

def answer(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code

def read(path):
    with open(path, "rb") as file:
        return file.read().decode(errors="replace")

json.dumps({
    "uid": os.getuid(),
    "euid": os.geteuid(),
    "groups": os.getgroups(),
    "data_dir": attempt(lambda: sorted(os.listdir(DATA_DIR))),
    "cluster_dir": attempt(lambda: sorted(os.listdir(os.path.join(DATA_DIR, "postgres")))),
    "socket_dir_write": attempt(lambda: open(os.path.join(DATA_DIR, "db-socket", "x"), "w")),
    "password_file": attempt(lambda: read(os.path.join(DATA_DIR, "postgres-password"))),
    "bob_environ": [attempt(lambda: read(f"/proc/{pid}/environ")) for pid in BOB_PIDS],
    "visible_pids": [int(name) for name in os.listdir("/proc") if name.isdigit()],
    "bob_home": attempt(lambda: os.listdir(BOB_HOME)),
    "bob_secret": attempt(lambda: read(os.path.join(BOB_HOME, "secret.txt"))),
    "bob_server_without_token": answer(f"http://127.0.0.1:{BOB_PORT}/user/bob/api/contents"),
})
"""

# Runs in Bob's kernel: leaves a secret in his home and says where that is.
BOB_SETUP = """
import json, os
home = os.path.expanduser("~")
with open(os.path.join(home, "secret.txt"), "w") as secret:
    secret.write("bob's secret")
json.dumps({"home": home, "uid": os.getuid()})
"""


def test_the_isolation_chosen_for_each_request_and_machine():
    works, broken = None, "bwrap: setting up uid map: Permission denied"
    both = Isolation(system_users=True, sandbox=True)
    assert choose_isolation(AUTO, root=True, sandbox_problem=works, allow_root=False) == both
    accounts_only = choose_isolation(AUTO, root=True, sandbox_problem=broken, allow_root=False)
    assert accounts_only.mode == SYSTEM_USERS and broken in accounts_only.note
    sandboxed = choose_isolation(AUTO, root=False, sandbox_problem=works, allow_root=False)
    assert sandboxed.mode == SANDBOX
    nothing = choose_isolation(AUTO, root=False, sandbox_problem=broken, allow_root=False)
    assert not nothing.isolated and "not isolated" in nothing.describe()
    assert choose_isolation(NONE, root=False, sandbox_problem=works, allow_root=False).mode == NONE
    refusals = [
        (SYSTEM_USERS, False, works, False, "needs the hub to run as root"),
        (BOTH, True, broken, False, "uid map"),
        (SANDBOX, False, broken, False, "uid map"),
        (SANDBOX, True, works, False, "would run users' code as root"),
        (NONE, True, works, False, "would run users' code as root"),
    ]
    for requested, root, problem, allow_root, message in refusals:
        with pytest.raises(IsolationUnavailable, match=message):
            choose_isolation(requested, root=root, sandbox_problem=problem, allow_root=allow_root)
    allowed = choose_isolation(SANDBOX, root=True, sandbox_problem=works, allow_root=True)
    assert allowed.mode == SANDBOX


def test_long_user_names_get_valid_account_names():
    assert account_name("gilhub-", "alice") == "gilhub-alice"
    long_names = ["a" * 64, "a" * 60 + "b"]
    accounts = {account_name("gilhub-", name) for name in long_names}
    assert len(accounts) == 2 and all(len(name) <= 32 for name in accounts)


# -- the two hubs --------------------------------------------------------------------


@dataclass
class Hub:
    """A running hub as its users reach it, and what the test knows about its process."""

    url: str
    admin_token: str
    data_dir: Path
    pid: int
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, name: str | None = None) -> httpx.AsyncClient:
        token = self.tokens[name] if name else self.admin_token
        headers = {"Authorization": f"token {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)


async def add_people_with_servers(hub: Hub) -> None:
    async with hub.client() as admin:
        for name in PEOPLE:
            created = await admin.post(f"/hub/api/users/{name}", json={})
            assert created.status_code == 201, created.text
            token = await admin.post(f"/hub/api/users/{name}/tokens", json={"note": "test"})
            assert token.status_code == 201, token.text
            hub.tokens[name] = token.json()["token"]
            started = await admin.post(f"/hub/api/users/{name}/server")
            assert started.status_code in (201, 202), started.text
        async with asyncio.timeout(180):
            for name in PEOPLE:
                while not (await admin.get(f"/hub/api/users/{name}")).json()["server"]:
                    await asyncio.sleep(0.2)


async def stop_servers(hub: Hub) -> None:
    async with hub.client() as admin:
        for name in PEOPLE:
            await admin.delete(f"/hub/api/users/{name}/server")


@pytest.fixture(scope="module")
async def root_hub(tmp_path_factory) -> AsyncIterator[Hub]:
    """The hub as root, in this process, embedded PostgreSQL in its data directory."""
    assert os.geteuid() == 0, "the tests run as root (as CI does)"
    data_dir = tmp_path_factory.mktemp("root-hub")
    async with running_hub("", data_dir) as running:
        hub = Hub(running.url, await running.token_for(running.admin_name), data_dir, os.getpid())
        await add_people_with_servers(hub)
        hub.running = running  # type: ignore[attr-defined]
        try:
            yield hub
        finally:
            await stop_servers(hub)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
async def unprivileged_hub() -> AsyncIterator[Hub]:
    """``gilhub`` run by an unprivileged account of its own, as a lab without root would."""
    account = await ensure_account(f"{TEST_ACCOUNT_PREFIX}hub", "gilhub test hub")
    data_dir = Path(tempfile.mkdtemp(prefix="gilhub-unprivileged-hub-"))
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    output = data_dir.with_name(data_dir.name + ".log")
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": account.pw_dir,
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    as_account = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    gilhub = [server_python(), "-m", "gilhub"]
    with open(output, "wb") as log:
        hub_process = subprocess.Popen(
            [*gilhub, f"--data-dir={data_dir}", f"--port={port}", "--ip=127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir,
            **as_account,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_listening(url, hub_process, output)
        token = subprocess.run(
            [*gilhub, "token", "admin", f"--data-dir={data_dir}"],
            env=env,
            cwd=data_dir,
            capture_output=True,
            text=True,
            check=True,
            **as_account,
        ).stdout.strip()
        hub = Hub(url, token, data_dir, hub_process.pid)
        await add_people_with_servers(hub)
        try:
            yield hub
        finally:
            await stop_servers(hub)
    finally:
        hub_process.send_signal(signal.SIGTERM)
        hub_process.wait(60)
        shutil.rmtree(data_dir, ignore_errors=True)
        output.unlink(missing_ok=True)


async def wait_until_listening(url: str, process: subprocess.Popen, output: Path) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(120):
        while True:
            assert process.poll() is None, output.read_text()
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/hub/login")).status_code == 200:
                    return
            await asyncio.sleep(0.3)


# -- what the test sees from outside ------------------------------------------------------


def server_processes(hub: Hub, name: str) -> list[psutil.Process]:
    """NAME's server tree (sandbox included), among the hub's descendants."""
    found = []
    for process in psutil.Process(hub.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if process.environ().get("GILHUB_USER") == name:
                found.append(process)
    assert found, f"no server process of {name}"
    return found


def listening_port(processes: list[psutil.Process]) -> int:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    return connection.laddr.port
    raise AssertionError("the server listens nowhere")


async def run_in_kernel(hub: Hub, name: str, code: str) -> dict:
    """Start a kernel in NAME's server through the hub and run ``code`` (its value: JSON)."""
    async with hub.client(name) as client:
        created = await client.post(f"/user/{name}/api/kernels", json={})
        assert created.status_code == 201, created.text
        kernel = created.json()["id"]
        try:
            url = f"{hub.url.replace('http', 'ws', 1)}/user/{name}/api/kernels/{kernel}/channels"
            headers = {"Authorization": f"token {hub.tokens[name]}"}
            async with websockets.connect(url, additional_headers=headers) as websocket:
                result, _ = await execute(websocket, code, uuid.uuid4().hex)
        finally:
            await client.delete(f"/user/{name}/api/kernels/{kernel}")
    assert result is not None, "the kernel returned no value (an exception? see its output)"
    return json.loads(ast.literal_eval(result))


async def probe_from_alice(hub: Hub) -> tuple[dict, dict, list[psutil.Process]]:
    bob = await run_in_kernel(hub, "bob", BOB_SETUP)
    bob_processes = server_processes(hub, "bob")
    constants = {
        "DATA_DIR": str(hub.data_dir),
        "BOB_PIDS": [process.pid for process in bob_processes],
        "BOB_HOME": bob["home"],
        "BOB_PORT": listening_port(bob_processes),
    }
    preamble = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return await run_in_kernel(hub, "alice", preamble + PROBE), bob, bob_processes


def assert_alice_cannot_reach_bob_or_the_hub(seen: dict, bob_processes: list) -> None:
    # Inside the sandbox the data directory is empty but for the way to the user's own home
    # (without system accounts) and the directory of the database's socket, read-only.
    listing, cluster = seen["data_dir"], seen["cluster_dir"]
    assert isinstance(listing, str) or set(listing) <= {"scratch", "db-socket"}, listing
    assert cluster.startswith("refused"), cluster
    assert seen["socket_dir_write"].startswith("refused"), seen["socket_dir_write"]
    assert seen["password_file"].startswith("refused"), seen["password_file"]
    assert seen["bob_environ"] and all(r.startswith("refused") for r in seen["bob_environ"])
    assert not {process.pid for process in bob_processes} & set(seen["visible_pids"])
    assert seen["bob_home"].startswith("refused"), seen["bob_home"]
    assert seen["bob_secret"].startswith("refused"), seen["bob_secret"]
    assert seen["bob_server_without_token"] in (401, 403)
    assert seen["uid"] != 0 and seen["euid"] != 0 and 0 not in seen["groups"]


def assert_runs_in_a_sandbox(hub: Hub, name: str) -> None:
    outermost = server_processes(hub, name)[0]
    assert outermost.name() == "bwrap", outermost.cmdline()
    assert "--unshare-pid" in outermost.cmdline()


# -- the root hub: system accounts in sandboxes -------------------------------------------


async def test_root_hub_alice_cannot_reach_bob_or_the_hubs_files(root_hub):
    seen, bob, bob_processes = await probe_from_alice(root_hub)

    assert_alice_cannot_reach_bob_or_the_hub(seen, bob_processes)
    alice_account = pwd.getpwnam(account_name(TEST_ACCOUNT_PREFIX, "alice"))
    bob_account = pwd.getpwnam(account_name(TEST_ACCOUNT_PREFIX, "bob"))
    assert seen["uid"] == alice_account.pw_uid and bob["uid"] == bob_account.pw_uid
    assert bob["home"] == bob_account.pw_dir
    assert_runs_in_a_sandbox(root_hub, "alice")
    inside = [p for p in server_processes(root_hub, "alice") if p.name() != "bwrap"]
    assert inside and all(p.uids().real == alice_account.pw_uid for p in inside)


def test_root_hub_accounts_have_private_homes_and_no_login(root_hub):
    for name in PEOPLE:
        account = pwd.getpwnam(account_name(TEST_ACCOUNT_PREFIX, name))
        assert account.pw_shell == "/usr/sbin/nologin"
        home = Path(account.pw_dir)
        assert home.stat().st_mode & 0o777 == 0o700 and home.stat().st_uid == account.pw_uid
        # the per-user Jupyter directories (signing secret among them) belong to the user
        data_dir = home / ".local" / "share" / "jupyter"
        assert data_dir.stat().st_uid == account.pw_uid


def test_root_hub_data_directory_is_closed_to_others(root_hub):
    mode = root_hub.data_dir.stat().st_mode & 0o777
    # 0710: the embedded PostgreSQL's own account (a root hub's) may pass through, no one else
    assert mode in (0o700, 0o710), oct(mode)
    password_file = root_hub.data_dir / "postgres-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert (root_hub.data_dir / "logs").stat().st_mode & 0o777 == 0o700


async def test_root_hub_locks_the_account_of_a_removed_user(root_hub):
    async with root_hub.client() as admin:
        assert (await admin.post("/hub/api/users/carol", json={})).status_code == 201
        assert (await admin.post("/hub/api/users/carol/server")).status_code in (201, 202)
        async with asyncio.timeout(120):
            while not (await admin.get("/hub/api/users/carol")).json()["server"]:
                await asyncio.sleep(0.2)
        name = account_name(TEST_ACCOUNT_PREFIX, "carol")
        assert find_account(name) is not None
        assert (await admin.delete("/hub/api/users/carol")).status_code == 204
    shadow = {line.split(":")[0]: line.split(":")[1] for line in open("/etc/shadow")}
    assert shadow[name].startswith("!")  # locked (removed_user_account = "lock")
    assert find_account(name) is not None  # and kept, with its files


# -- the unprivileged hub: sandboxes under the hub's account --------------------------------


async def test_unprivileged_hub_alice_cannot_reach_bob_or_the_hubs_files(unprivileged_hub):
    seen, bob, bob_processes = await probe_from_alice(unprivileged_hub)

    assert_alice_cannot_reach_bob_or_the_hub(seen, bob_processes)
    hub_account = pwd.getpwnam(f"{TEST_ACCOUNT_PREFIX}hub")
    assert seen["uid"] == bob["uid"] == hub_account.pw_uid  # one account, kept apart
    assert_runs_in_a_sandbox(unprivileged_hub, "alice")
    assert unprivileged_hub.data_dir.stat().st_mode & 0o777 == 0o700
    assert (unprivileged_hub.data_dir / "postgres-password").stat().st_mode & 0o777 == 0o600


# -- finding 1: a notebook signed by Alice is not trusted by Bob ---------------------------


def notebook_with_a_script() -> dict:
    script = "<script>fetch('/hub/api/users/bob/tokens', {method: 'POST'})</script>"
    output = nbformat.v4.new_output("display_data", data={"text/html": script})
    cell = nbformat.v4.new_code_cell("display(HTML(script))", outputs=[output])
    cell.metadata["trusted"] = True  # as JupyterLab marks the cells it ran
    return nbformat.v4.new_notebook(cells=[cell])


async def trusted(client: httpx.AsyncClient, name: str, path: str) -> bool:
    model = await client.get(f"/user/{name}/api/contents/{path}")
    assert model.status_code == 200, model.text
    return all(cell["metadata"].get("trusted") for cell in model.json()["content"]["cells"])


async def put_file(client: httpx.AsyncClient, name: str, path: str, text: str) -> None:
    body = {"type": "file", "format": "text", "content": text}
    saved = await client.put(f"/user/{name}/api/contents/{path}", json=body)
    assert saved.status_code in (200, 201), saved.text


@pytest.mark.parametrize("hub_fixture", ["root_hub", "unprivileged_hub"])
async def test_a_notebook_signed_by_alice_is_untrusted_for_bob(request, hub_fixture):
    hub: Hub = request.getfixturevalue(hub_fixture)
    async with hub.client("alice") as alice, hub.client("bob") as bob:
        body = {"type": "notebook", "content": notebook_with_a_script()}
        saved = await alice.put("/user/alice/api/contents/signed.ipynb", json=body)
        assert saved.status_code == 201, saved.text
        assert await trusted(alice, "alice", "signed.ipynb")  # signed with Alice's secret
        raw = await alice.get("/user/alice/api/contents/signed.ipynb?type=file&format=text")
        stored = raw.json()["content"]

        # The same bytes: Alice's server trusts them anywhere in her storage (the signature
        # is of the content), Bob's server does not (his own secret, his own signatures).
        await put_file(alice, "alice", "copy.ipynb", stored)
        assert await trusted(alice, "alice", "copy.ipynb")
        await put_file(bob, "bob", "signed.ipynb", stored)
        assert not await trusted(bob, "bob", "signed.ipynb")

        # Through the repository, outputs kept: pushed by Alice, pulled by Bob, untrusted.
        push = {"source": "signed.ipynb", "path": f"{hub_fixture}/signed.ipynb",
                "message": "with outputs", "keep_outputs": True}  # fmt: skip
        pushed = await alice.post("/hub/api/repo/push", json=push)
        assert pushed.status_code == 201, pushed.text
        pull = {"path": f"{hub_fixture}/signed.ipynb", "dest": "pulled.ipynb"}
        pulled = await bob.post("/hub/api/repo/pull", json=pull)
        assert pulled.status_code == 201, pulled.text
        assert not await trusted(bob, "bob", "pulled.ipynb")
        tokens = await bob.get("/hub/api/users/bob/tokens")
        assert len(tokens.json()["api_tokens"]) == 1  # only the test's own


# -- where users are not isolated, the admin is told ----------------------------------------


async def test_without_isolation_the_admin_page_says_users_are_not_isolated(database_url, tmp_path):
    config = Config()
    config.LocalProcessSpawner.isolation = "none"
    config.LocalProcessSpawner.allow_root = True  # the tests run as root
    async with running_hub(database_url, tmp_path, config) as hub:
        assert not hub.app.isolation.isolated
        page = await admin_page(hub)
        assert "Users are not isolated from each other" in page


async def test_with_isolation_the_admin_page_has_no_warning(root_hub):
    running: RunningHub = root_hub.running  # type: ignore[attr-defined]
    assert running.app.isolation.mode == BOTH
    assert "isolation-warning" not in await admin_page(running)


async def admin_page(hub: RunningHub) -> str:
    client = await hub.login(hub.admin_name, hub.admin_password)
    page = await client.get("/hub/admin")
    assert page.status_code == 200
    return page.text


async def test_root_servers_are_refused_unless_allowed(database_url, tmp_path):
    from gilhub.app import HubStartError

    config = Config()
    config.LocalProcessSpawner.isolation = "sandbox"
    with pytest.raises(HubStartError, match="would run users' code as root"):
        async with running_hub(database_url, tmp_path, config):
            pass


async def test_root_hub_runs_servers_from_the_python_it_was_installed_with(tmp_path):
    """The README's install as root: the venv's Python may sit under root's 0700 home (a
    pyenv build); the sandbox binds it back, so users' accounts can run it."""
    import sys

    from tests.hub.servers_harness import start_and_wait

    config = Config()
    config.Spawner.cmd = [sys.executable, "-m", "jupyter_server"]
    async with running_hub("", tmp_path / "data", config) as running:
        user = await running.add_user("pyowner")
        events = await start_and_wait(running.app, user)
        assert events[-1].get("ready"), events[-1]
        servers = [
            process
            for process in psutil.process_iter(["cmdline", "uids"])
            if "--ServerApp.base_url=/user/pyowner/" in (process.info["cmdline"] or [])
            and Path(process.info["cmdline"][0]).name.startswith("python")
        ]
        assert servers and all(0 not in process.info["uids"] for process in servers)
