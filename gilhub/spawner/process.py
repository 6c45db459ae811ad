"""Starting and ending user-server processes, on POSIX and on Windows.

Two platform differences shape this module:

- **Starting.** psycopg's async mode needs a selector event loop, so on Windows
  the hub runs ``WindowsSelectorEventLoopPolicy`` (see :mod:`gilhub.db.engine`),
  and that loop cannot run asyncio subprocesses (only the Proactor loop can).
  On Windows a child is therefore started with :class:`subprocess.Popen` and
  its exit awaited from a daemon thread (not :func:`asyncio.to_thread`: the
  default executor is joined when the loop shuts down, so a hub that leaves
  its users' servers running would hang on exit); on POSIX it is started with
  :func:`asyncio.create_subprocess_exec`.
- **Ending.** Windows has no SIGTERM for a console process tree: the child is
  started in a new process group (``CREATE_NEW_PROCESS_GROUP``), asked to stop
  with ``CTRL_BREAK_EVENT`` sent to that group, and whatever survives is
  terminated with psutil (TerminateProcess, like ``taskkill /T /F``). On POSIX
  the child leads a session of its own (``start_new_session``, so a Ctrl-C
  at the hub's terminal does not reach it and it survives a hub restart); its
  whole tree gets SIGTERM through psutil, then SIGKILL.

No POSIX-only name is touched at import time or on the Windows path.
:func:`is_windows` is the single switch between the two paths (tests patch it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def is_windows() -> bool:
    return sys.platform == "win32"


@dataclass
class ChildProcess:
    """A started child: its pid and a way to learn its exit code."""

    pid: int
    create_time: float
    _waiter: asyncio.Future[int] = field(repr=False)

    @property
    def returncode(self) -> int | None:
        if not self._waiter.done():
            return None
        return self._waiter.result()

    async def wait(self) -> int:
        return await asyncio.shield(self._waiter)


def _process_create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        # Already gone: a time no live process can match.
        return 0.0


async def start_process(
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    user: str | None = None,
    group: int | None = None,
    nice: int = 0,
) -> ChildProcess:
    """Start ``cmd`` with stdout and stderr appended to ``log_path``, ``nice`` steps below
    the hub's CPU priority (see ``Spawner.nice``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # noqa: ASYNC230 - opening, not reading
        io = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT}
        if is_windows():
            flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
            if nice > 0:
                flags |= subprocess.BELOW_NORMAL_PRIORITY_CLASS  # type: ignore[attr-defined]
            # Popen returns once the process exists (see the module docstring for why not asyncio).
            popen = subprocess.Popen(list(cmd), env=env, cwd=cwd, creationflags=flags, **io)  # noqa: ASYNC220
            pid, waiter = popen.pid, _wait_in_daemon_thread(popen)
        else:
            # No supplementary groups (the hub's, root's among them) for another account.
            groups = [] if user is not None else None
            # coreutils' nice rather than preexec_fn, which is unsafe in a threaded hub;
            # the sandbox and everything the server starts inherit the priority
            niced = [shutil.which("nice") or "nice", "-n", str(nice)] if nice > 0 else []
            proc = await asyncio.create_subprocess_exec(
                *niced,
                *cmd,
                env=env,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=group,
                extra_groups=groups,
                **io,
            )
            pid, waiter = proc.pid, proc.wait()
    return ChildProcess(pid, _process_create_time(pid), asyncio.ensure_future(waiter))


def _wait_in_daemon_thread(popen: subprocess.Popen) -> asyncio.Future[int]:
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()

    def report(code: int) -> None:
        if not exited.done():
            exited.set_result(code)

    def wait() -> None:
        code = popen.wait()
        with contextlib.suppress(RuntimeError):  # the hub's loop has closed meanwhile
            loop.call_soon_threadsafe(report, code)

    threading.Thread(target=wait, name=f"wait-for-{popen.pid}", daemon=True).start()
    return exited


def find_process(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """The live process ``pid``, if it is still the one started at ``create_time``.

    Comparing the start time guards against the pid having been reused by an
    unrelated process since the hub recorded it.
    """
    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        if create_time and abs(process.create_time() - create_time) > 1.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def _process_tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return [process]


def _ask_to_stop(process: psutil.Process, tree: list[psutil.Process]) -> bool:
    """Send the polite stop request; ``False`` if it could not be delivered."""
    if is_windows():
        import signal

        # Delivered to every process of the child's group (CREATE_NEW_PROCESS_GROUP),
        # but only when the hub shares a console with it: a hub running as a service
        # has none, and then only the REST shutdown before this and the kill after it work.
        try:
            os.kill(process.pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    return True


async def terminate_tree(
    process: psutil.Process, *, child: ChildProcess | None = None, grace: float = 5.0
) -> None:
    """Ask the process and its descendants to stop; kill what is left after ``grace`` s.

    ``child`` is the hub's own handle when ``process`` is its child: the hub's
    event loop reaps that one, so it is awaited through the handle rather than
    by psutil (two reapers of one pid would race).
    """
    tree = _process_tree(process)
    asked = _ask_to_stop(process, tree)
    alive = await _wait_gone(tree, child, grace) if asked else tree
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    if alive:
        await _wait_gone(alive, child if tree[0] in alive else None, grace)


async def _wait_gone(
    tree: list[psutil.Process], child: ChildProcess | None, timeout: float
) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``tree`` to end; return the members still alive."""
    others = tree[1:] if child is not None else tree
    _, alive = await asyncio.to_thread(psutil.wait_procs, others, timeout=timeout)
    if child is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), timeout)
        if child.returncode is None:
            alive.insert(0, tree[0])
    return alive
