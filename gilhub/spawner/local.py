"""The default spawner: a ``jupyter_server`` child process on this machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.engine import make_url
from traitlets import Enum, Int, List, Unicode

import gilhub
from gilhub.spawner.accounts import DELETE, KEEP, LOCK, account_name, ensure_account, retire_account
from gilhub.spawner.base import Spawner, hub_runs_as_root, scratch_home
from gilhub.spawner.isolation import (
    AUTO,
    BOTH,
    MODES,
    NONE,
    SANDBOX,
    Isolation,
    IsolationUnavailable,
    choose_isolation,
)
from gilhub.spawner.jobs import Job, ProcessJob
from gilhub.spawner.process import ChildProcess, find_process, start_process, terminate_tree
from gilhub.spawner.sandbox import (
    Sandbox,
    drop_privileges,
    find_bwrap,
    open_to_others,
    sandbox_problem,
)

# jupyter_server's words when its port was taken between our pick and its bind.
_PORT_TAKEN_MESSAGES = ("is already in use", "no available port could be found")
_LOG_TAIL_BYTES = 64 * 1024
_LOG_ROTATE_BYTES = 5 * 1024 * 1024


def free_loopback_port() -> int:
    """A port nobody listens on right now (it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_socket_dir(db_url: Any) -> Path | None:
    """The directory of the Unix socket a PostgreSQL URL connects through (the embedded
    cluster's), if any."""
    if not db_url:
        return None
    url = make_url(db_url) if isinstance(db_url, str) else db_url
    host = url.query.get("host") or url.host or ""
    host = host[0] if isinstance(host, tuple) else host
    if not host.startswith("/"):
        return None
    return Path(host)


class LocalProcessSpawner(Spawner):
    """Runs the server as a child process of the hub, isolated as :attr:`isolation` says."""

    port_attempts = Int(
        5, config=True, help="Ports to try when the chosen port is taken before the server binds."
    )
    stop_grace = Int(
        5, config=True, help="Seconds the process tree gets to exit before it is killed."
    )
    isolation = Enum(
        MODES,
        default_value=AUTO,
        config=True,
        help="""How users' servers are kept apart (see gilhub.spawner.isolation): "auto"
        (system accounts plus a bubblewrap sandbox under root, the sandbox otherwise where
        bwrap works, else "none" with a warning), "system-users", "sandbox",
        "system-users+sandbox" or "none".""",
    )
    account_prefix = Unicode(
        "gilhub-",
        config=True,
        help="Prefix of the system account of each user (isolation with system users).",
    )
    removed_user_account = Enum(
        (KEEP, LOCK, DELETE),
        default_value=LOCK,
        config=True,
        help="What happens to a removed user's system account: keep it, lock it (files "
        "kept, no process can log in as it) or delete it with its home directory.",
    )
    bwrap = Unicode("bwrap", config=True, help="The bubblewrap command (a name on PATH or a path).")
    sandbox_hidden_paths = List(
        Unicode(),
        default_value=["/home"],
        config=True,
        help="Directories a sandboxed server sees empty, besides the hub's data directory "
        "and the hub account's home (the user's own home is bound back).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._child: ChildProcess | None = None
        self._pid: int | None = None
        self._create_time: float | None = None
        self._sandbox_init: tuple[int, float] | None = None
        self._port: int | None = None
        self._attempts = 0
        self._log_offset = 0
        self._home: Path | None = None
        self._isolation: Isolation | None = None

    def pick_port(self) -> int:
        return free_loopback_port()

    # -- isolation -----------------------------------------------------------------

    async def isolation_status(self) -> Isolation:
        """The isolation :attr:`isolation` amounts to here (bubblewrap is probed once)."""
        root = hub_runs_as_root()
        problem = None
        if self.isolation in (AUTO, SANDBOX, BOTH):
            problem = await sandbox_problem(find_bwrap(self.bwrap), privileged=root)
        isolation = choose_isolation(
            self.isolation, root=root, sandbox_problem=problem, allow_root=self.allow_root
        )
        if isolation.system_users:
            self._check_reachable_by_accounts(sandbox=isolation.sandbox)
        return isolation

    async def prepare(self) -> None:
        """Settle the isolation, the system account (created if missing) and the home."""
        self._isolation = await self.isolation_status()
        if self._isolation.system_users:
            name = account_name(self.account_prefix, self.user.name)
            self._account = await ensure_account(name, f"gilhub user {self.user.name}")
            if self._account.pw_uid == 0 and not self.allow_root:
                raise IsolationUnavailable(f"the account {name} is root; refusing to use it")
            self._home = Path(self._account.pw_dir)
        else:
            self._account = None
            self._home = self.shared_account_home()

    def _check_reachable_by_accounts(self, *, sandbox: bool) -> None:
        """Users' accounts must be able to run the server and reach the database."""
        program = Path(shutil.which(self.cmd[0]) or self.cmd[0]).absolute()
        # in the sandbox the Python installation is bound back where every account reaches it
        for path in () if sandbox else (program, program.resolve()):  # a venv, and its Python
            if not open_to_others(path, resolve=False):
                raise IsolationUnavailable(
                    f"users' system accounts cannot run {program} ({path} is inside a"
                    " directory closed to other accounts): install Python and gilhub where"
                    " every account can read them (e.g. /opt/gilhub), or set c.Spawner.cmd"
                )
        socket_dir = database_socket_dir(self.hub.db_url)
        if socket_dir is not None and not sandbox and not open_to_others(socket_dir):
            raise IsolationUnavailable(
                f"users' system accounts cannot reach the database socket in {socket_dir}"
                " without the bubblewrap sandbox (which binds it in): install bubblewrap, or give"
                " db_url a PostgreSQL server reachable over TCP"
            )

    def shared_account_home(self) -> Path:
        return scratch_home(self.hub, self.user.name)

    async def user_removed(self) -> None:
        """Keep, lock or delete the user's system account (isolation with system users)."""
        try:
            isolation = await self.isolation_status()
        except IsolationUnavailable:
            return
        if isolation.system_users:
            name = account_name(self.account_prefix, self.user.name)
            await retire_account(name, self.removed_user_account)

    def home(self) -> Path:
        """The user's home: the server's root directory and the kernels' working directory."""
        if self._home is None:
            raise RuntimeError("prepare() sets the home before the server starts")
        return self._home

    def process_identity(self) -> tuple[str | None, int | None]:
        """(user, group) the server runs as; ``None`` keeps the hub's."""
        if self._account is None:
            return None, None
        return self._account.pw_name, self._account.pw_gid

    def isolated_command(self, cmd: list[str]) -> tuple[list[str], str | None, int | None]:
        """``cmd`` as this user's processes run, and the (user, group) the hub starts it as.

        In a sandbox under root, the hub starts ``bwrap`` as root and ``setpriv``
        inside drops to the user's account; otherwise the process is started as
        that account (asyncio's ``user``/``group``, no supplementary groups).
        """
        user, group = self.process_identity()
        if self._isolation is None or not self._isolation.sandbox:
            return cmd, user, group
        setpriv: list[str] = []
        if self._account is not None:
            setpriv_path = shutil.which("setpriv") or "setpriv"
            setpriv = drop_privileges(setpriv_path, self._account.pw_uid, self._account.pw_gid)
        bwrap = find_bwrap(self.bwrap) or self.bwrap
        return self.sandbox().command(bwrap, cmd, setpriv=setpriv), None, None

    async def start_job(self, cmd: list[str], *, env: dict[str, str], log_path: Path) -> Job:
        """Start ``cmd`` in the user's account and sandbox, with their home and Jupyter
        directories (a notebook run's worker: issue 12)."""
        await self.prepare()
        command, user, group = self.isolated_command(cmd)
        child = await self._start_isolated(
            command, env={**env, **self.identity_env()}, log_path=log_path, user=user, group=group
        )
        return ProcessJob.of_child(child)

    async def _start_isolated(
        self,
        command: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        user: str | None,
        group: int | None,
    ) -> ChildProcess:
        return await start_process(
            command,
            env=env,
            cwd=self.home(),
            log_path=log_path,
            user=user,
            group=group,
            nice=self.nice,
        )

    def sandbox(self) -> Sandbox:
        """This server's sandbox: what it hides, and what it binds back."""
        # the hub's own account's home: hidden from a server under the hub's account, and
        # under root an open tmpfs into which a Python installed there is bound back
        hidden = [Path(self.hub.data_dir), Path.home()]
        hidden += [Path(path) for path in self.sandbox_hidden_paths]
        runtime = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
        runtime |= {Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
        if os.path.isabs(self.cmd[0]):
            runtime.add(Path(self.cmd[0]).parent)
        runtime.add(Path(gilhub.__file__).resolve().parent)  # an editable install's package
        # and every directory the hub imports from (a virtual environment's .pth files may
        # add some outside it)
        runtime |= {Path(entry) for entry in sys.path if entry and os.path.isdir(entry)}
        socket_dir = database_socket_dir(self.hub.db_url)
        return Sandbox(
            home=self.home(),
            hidden=hidden,
            runtime=sorted(runtime),
            socket_dirs=[socket_dir] if socket_dir is not None else [],
        )

    async def start(self) -> tuple[str, int]:
        self._attempts += 1
        self._port = self.pick_port()
        await self.prepare()
        self._log_offset = self._prepare_log()
        command, user, group = self.isolated_command([*self.cmd, *self.get_args(self._port)])
        self._child = await self._start_isolated(
            command, env=self.get_env(), log_path=self.log_path, user=user, group=group
        )
        self._pid, self._create_time = self._child.pid, self._child.create_time
        self._sandbox_init = None
        self.log.info(
            "started server of %s: pid %s, port %s (isolation: %s)",
            self.user.name,
            self._pid,
            self._port,
            self._isolation.mode if self._isolation else NONE,
        )
        return "127.0.0.1", self._port

    def _prepare_log(self) -> int:
        """Rotate an overgrown log; return where this run's output begins."""
        path = self.log_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # servers' output: the hub's
        if path.exists() and path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_suffix(".log.1"))
        return path.stat().st_size if path.exists() else 0

    def _note_sandbox_init(self) -> None:
        """Remember the sandbox's init process (the outer bwrap's child) once it exists.

        Killing only the outer ``bwrap`` would leave the sandbox running: :meth:`stop`
        ends the init too, and the kernel then ends every process of its namespace.
        """
        if self._sandbox_init is not None or not (self._isolation and self._isolation.sandbox):
            return
        outer = find_process(self._pid, self._create_time)
        with contextlib.suppress(psutil.Error):
            children = outer.children() if outer is not None else []
            if children:
                self._sandbox_init = (children[0].pid, children[0].create_time())

    async def poll(self) -> int | None:
        self._note_sandbox_init()
        if self._child is not None:
            return self._child.returncode
        if find_process(self._pid, self._create_time) is not None:
            return None
        # A server adopted after a hub restart is not our child: its code is unknown.
        return 0

    async def stop(self) -> None:
        process = find_process(self._pid, self._create_time)
        if process is not None:
            await terminate_tree(process, child=self._child, grace=self.stop_grace)
        sandbox_init = find_process(*self._sandbox_init) if self._sandbox_init else None
        if sandbox_init is not None:
            await terminate_tree(sandbox_init, grace=self.stop_grace)
        self._child, self._pid, self._sandbox_init, self._attempts = None, None, None, 0

    def retry_start(self) -> bool:
        if self._attempts >= self.port_attempts:
            return False
        tail = "\n".join(self.log_tail())
        return any(message in tail for message in _PORT_TAKEN_MESSAGES)

    def log_tail(self, lines: int = 40) -> list[str]:
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, 2)
                log.seek(max(self._log_offset, size - _LOG_TAIL_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def log_location(self) -> str | None:
        return str(self.log_path)

    def get_state(self) -> dict[str, Any]:
        self._note_sandbox_init()
        return {
            "pid": self._pid,
            "create_time": self._create_time,
            "port": self._port,
            "sandbox_init": self._sandbox_init,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._pid = state.get("pid")
        self._create_time = state.get("create_time")
        self._port = state.get("port")
        sandbox_init = state.get("sandbox_init")
        self._sandbox_init = tuple(sandbox_init) if sandbox_init else None
