"""Linux: a bubblewrap (``bwrap``) sandbox around a user's server.

The server and its kernels run in namespaces of their own, made by Debian's
``bubblewrap``:

- its own PID namespace (``--unshare-pid`` with a fresh ``/proc``): a kernel sees
  only its own server's processes, so no other server's ``/proc/PID/environ``;
  its own IPC and UTS namespaces, and a new terminal session (``--new-session``:
  no TIOCSTI into a terminal outside);
- the whole file system read-only (``--ro-bind / /``), with empty tmpfs over the
  hub's data directory, the home directories and the hub account's home, then the
  user's own home bound back read-write at its own path; its own ``/tmp``,
  ``/dev`` and ``/dev/shm``; the Python installation bound back read-only where it
  lies under a hidden directory (never inside the data directory); the directory
  of the database's Unix socket bound back read-only at its own path (the
  directory, not the socket: the new socket of a restarted PostgreSQL appears in
  it; connecting needs no write access);
- the network is shared: the server listens on 127.0.0.1 for the hub's proxy.

Who makes it: a hub that does not run as root makes it with its own account and
unprivileged user namespaces (``--unshare-user --disable-userns``: no further user
namespaces inside). A hub running as root makes it as root, without a user
namespace, and the server's command starts with ``setpriv`` dropping to the
user's system account (no capabilities, no new privileges), so the server runs as
that account's real uid, never as root inside a namespace.

No ``--die-with-parent``: a user's server must survive a restart of the hub (the
restarted hub re-adopts it by pid and start time), and that option would kill
the sandbox with the hub. The outer ``bwrap`` process (the hub's child) waits for
the sandbox's init process; with ``--unshare-pid`` the kernel ends every process
of the namespace when that init ends, so ending the tree from either ends it all.

Nothing here runs on import; the module is imported on every platform.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gilhub.spawner import process

#: The options every sandbox uses, and the probe checks.
NAMESPACE_OPTIONS = (
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session",
    "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",  # noqa: S108 (its own /tmp)
)  # fmt: skip
PRIVATE_TMP = Path("/tmp")  # noqa: S108 (every sandbox has a /tmp of its own)
#: Made by an unprivileged account: a user namespace, and no further ones inside.
UNPRIVILEGED_OPTIONS = ("--unshare-user", "--disable-userns")

_probe_results: dict[tuple[str, bool], str | None] = {}


def find_bwrap(configured: str = "bwrap") -> str | None:
    """The path of ``bwrap``, or ``None`` where there is none (Windows, macOS, not installed)."""
    if process.is_windows() or not sys.platform.startswith("linux"):
        return None
    return shutil.which(configured)


async def sandbox_problem(bwrap: str | None, *, privileged: bool) -> str | None:
    """Why a sandbox cannot be made here (``None``: it can), probed once per process.

    ``privileged``: the hub runs as root and makes the sandboxes itself; otherwise
    they need unprivileged user namespaces, which a system may forbid.
    """
    if bwrap is None:
        if sys.platform.startswith("linux") and not process.is_windows():
            return "bubblewrap (bwrap) is not installed"
        return "bubblewrap sandboxes need Linux"
    key = (bwrap, privileged)
    if key not in _probe_results:  # two concurrent first probes just both run
        _probe_results[key] = await _probe(bwrap, privileged)
    return _probe_results[key]


async def _probe(bwrap: str, privileged: bool) -> str | None:
    options = NAMESPACE_OPTIONS if privileged else (*UNPRIVILEGED_OPTIONS, *NAMESPACE_OPTIONS)
    command = [bwrap, "--ro-bind", "/", "/", *options, "true"]
    try:
        probe = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd="/",
        )
        _, error = await probe.communicate()
    except OSError as failure:
        return f"cannot run {bwrap}: {failure}"
    if probe.returncode != 0:
        reason = error.decode(errors="replace").strip() or f"exit code {probe.returncode}"
        return f"'{' '.join(command)}' fails: {reason}"
    return None


@dataclass(frozen=True)
class Sandbox:
    """What one server's sandbox shows: everything read-only but ``home`` and ``/tmp``.

    ``hidden`` directories are covered by empty tmpfs, the first being the hub's data
    directory; ``runtime`` paths under a hidden one (the Python installation,
    PYTHONPATH) are bound back read-only, except inside the data directory or the
    home; ``socket_dirs`` (the database socket's) are bound back read-only wherever
    they are.
    """

    home: Path
    hidden: Sequence[Path]
    runtime: Sequence[Path] = ()
    socket_dirs: Sequence[Path] = ()

    def command(self, bwrap: str, cmd: Sequence[str], *, setpriv: Sequence[str] = ()) -> list[str]:
        """``cmd`` inside the sandbox.

        With ``setpriv`` (a ``setpriv`` command line that drops to the user's account)
        the sandbox is made by root, without a user namespace, and the command drops
        its privileges inside: so the sandbox can bind what only root can reach (the
        database socket) while the server runs as the user's real account. Without
        it the sandbox is made by the hub's own, unprivileged, account.
        """
        hidden = _existing_outermost(self.hidden)
        data_dir = hidden[0] if hidden else None
        args = [bwrap, "--ro-bind", "/", "/"]
        for path in hidden:
            args += ["--tmpfs", str(path)]
        args += self._bind_back(hidden, data_dir)
        home = str(self.home)
        args += [*(() if setpriv else UNPRIVILEGED_OPTIONS), *NAMESPACE_OPTIONS]
        # the sandbox's own /tmp now covers the hub's: bind back what runs from there
        args += self._bind_back([PRIVATE_TMP], data_dir)
        args += ["--bind", home, home]
        for directory in map(str, self.socket_dirs):
            # --dir first: the directories on the way open to the server (0755; bwrap would
            # make them 0700). Read-only: connecting to the socket needs no write access.
            args += ["--dir", directory, "--ro-bind", directory, directory]
        return [*args, "--chdir", home, "--", *setpriv, *cmd]

    def _bind_back(self, covered: Sequence[Path], data_dir: Path | None) -> list[str]:
        """Read-only binds of the runtime paths under ``covered`` directories (never one
        inside or around the data directory, or inside the home), parents left open."""
        args: list[str] = []
        for path in _existing_outermost(self.runtime):
            under = any(path.is_relative_to(c) and path != c for c in covered)
            near_data_dir = data_dir is not None and (
                path.is_relative_to(data_dir) or data_dir.is_relative_to(path)
            )
            if under and not near_data_dir and not path.is_relative_to(self.home):
                args += _open_parents(path, covered)
                args += ["--ro-bind", str(path), str(path)]
        return args


def _open_parents(path: Path, hidden: Sequence[Path]) -> list[str]:
    """``--dir`` for the directories between the hidden one and ``path``: bwrap would make
    them 0700, closing what is bound back to every account but the sandbox's maker."""
    cover = next(h for h in hidden if path.is_relative_to(h))
    between = [p for p in path.parents if p.is_relative_to(cover) and p != cover]
    return [arg for parent in reversed(between) for arg in ("--dir", str(parent))]


def drop_privileges(setpriv: str, uid: int, gid: int) -> list[str]:
    """A ``setpriv`` command line that becomes ``uid``/``gid`` with no capabilities left."""
    return [
        setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--no-new-privs", "--",
    ]  # fmt: skip


def open_to_others(path: Path, *, resolve: bool = True) -> bool:
    """Whether any account may reach ``path``: every directory on the way is o+x.

    Users' own accounts cannot run or bind what they cannot reach (a Python under
    root's 0700 home, say). ``resolve=False`` checks the way as written, through
    symbolic links rather than to their targets.
    """
    path = Path(path).resolve() if resolve else Path(path)
    try:
        return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.is_dir())
    except OSError:
        return False


def _existing_outermost(paths: Iterable[Path]) -> list[Path]:
    """Existing absolute paths, first-given order, without those inside an earlier one."""
    kept: list[Path] = []
    for path in paths:
        path = Path(path).resolve()
        if path.exists() and path != Path("/") and not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept
