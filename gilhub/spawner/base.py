"""The pluggable spawner API.

A spawner starts, watches and stops one user's ``jupyter_server``. The
:class:`~gilhub.servers.ServerManager` owns everything generic (tokens, the
``servers`` table, the spawn queue, readiness, progress, culling) and asks the
spawner only to run a server somewhere and say where it listens. A site that
outgrows one machine subclasses :class:`Spawner` (a Slurm job, a Kubernetes pod)
and sets ``GilHub.spawner_class``; :class:`~gilhub.spawner.local.LocalProcessSpawner`
is the default.

The contract (``tests/hub/test_spawner_contract.py`` checks it with a spawner that
shares no code with the local one):

- The manager sets :attr:`Spawner.token` and :attr:`Spawner.db_url` and calls
  :meth:`Spawner.start`, which returns ``(host, port)`` where the server *will*
  listen (it may return before the server answers; the manager then polls
  ``GET {base_url}api`` with the token until it answers 200). The server must run
  with :meth:`Spawner.get_env` (secrets only there) and :meth:`Spawner.get_args`.
  ``start_timeout`` counts from the moment the start leaves the hub's spawn queue
  (the manager prepares the user's database access, then calls :meth:`start`), so
  time waiting for other starts is not counted; time in a batch scheduler's own
  queue is.
- :meth:`Spawner.poll` answers ``None`` while the server is running, and once it
  has ended its exit status, or ``0`` when the status is unknown (a server found
  again after a hub restart is not the hub's child).
- :meth:`Spawner.stop` ends the server for good and may be called when it is
  already gone. Before it, the manager asks the server to shut down over its REST
  API and waits ``ServerManager.shutdown_wait`` seconds.
- :meth:`Spawner.get_state` returns what the spawner needs to find its server
  again after a hub restart (JSON: a process id and start time, a job id); the
  manager stores it opaquely and gives it back through :meth:`Spawner.load_state`
  on a new instance, then calls :meth:`poll`. Nothing outside a spawner reads it.
- :meth:`Spawner.log_tail` and :meth:`Spawner.log_location` say what the server
  printed and where its whole log is, for the page shown when a start fails.
- Optional: :meth:`Spawner.report_progress` tells the person waiting what a start is
  doing (a batch queue's pending reason); :meth:`Spawner.address_reported` takes the
  address a server reports itself (``POST /hub/api/users/NAME/server/address``, made
  with the server's own token) when only the server can know it; :meth:`Spawner.end_reason`
  says why a server ended (a cancelled job) in words.
- :meth:`Spawner.start_job` starts another process of the user's (a notebook run's
  worker) with the same isolation as the server; the default runs it under the
  hub's account, so a spawner that isolates users must override it. It returns a
  :class:`~gilhub.spawner.jobs.Job`, whose state :meth:`Spawner.find_job` turns
  back into the job after a hub restart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from gilhub.spawner.isolation import Isolation
from gilhub.spawner.jobs import Job, ProcessJob
from gilhub.spawner.process import start_process


class Spawner(LoggingConfigurable):
    """Start, poll and stop one user's server. Subclasses implement the ``async`` methods."""

    user = AnyTrait(help="The gilhub.users.User whose server this is.")
    hub = AnyTrait(help="The GilHub application.")

    cmd = List(
        Unicode(),
        default_value=[sys.executable, "-m", "gilhub.singleuser"],
        config=True,
        help="""Command that starts the single-user server (the arguments gilhub adds follow
        it). The default is jupyter_server without its start-up waste (gilhub.singleuser);
        [sys.executable, "-m", "jupyter_server"] works too.""",
    )
    server_extensions = Dict(
        value_trait=Bool(),
        default_value={
            "gilhub.serverext": True,
            # Installed with JupyterLab or nbdime, unused behind the hub, and costly to
            # load at every start: language-server discovery, nbdime's git diff handlers
            # (the hub diffs notebooks itself), MathJax for nbdime, classic-notebook shims.
            "jupyter_lsp": False,
            "nbdime": False,
            "jupyter_server_mathjax": False,
            "notebook_shim": False,
        },
        config=True,
        help="""Server extensions to turn on (True) or off (False) in every user server, over
        what the installed Jupyter configuration enables; others are left as installed.""",
    )
    args = List(
        Unicode(),
        config=True,
        help="Extra command-line arguments for the server (never put secrets here).",
    )
    environment = Dict(
        value_trait=Unicode(),
        config=True,
        help="Extra environment variables for the server.",
    )
    start_timeout = Float(
        60.0, config=True, help="Seconds a server may take to answer before the start fails."
    )
    nice = Int(
        10,
        min=0,
        max=19,
        config=True,
        help="""How far below the hub's CPU priority a user's processes run (the server, its
        kernels and runs: Unix nice 0-19; on Windows any value above 0 is "below normal").
        When the machine is busy, the hub and PostgreSQL are then served first, so one
        user's busy kernel, or twenty servers starting at once, cannot make the hub slow for
        everyone; users' processes still share the CPU fairly among themselves. 0 runs them
        at the hub's priority.""",
    )
    contents_manager_class = Unicode(
        "gilhub.contents.PostgresContentsManager",
        config=True,
        help="Dotted name of the server's contents manager.",
    )

    allow_root = Bool(
        False,
        config=True,
        help="""Let a hub running as root run a user's server as root where no system account
        of the user's is used: LocalProcessSpawner only with isolation "sandbox" or "none"
        (never needed with system accounts), SlurmSpawner for users without an account.""",
    )

    #: The user's system account (a ``pwd`` entry) the server runs as, once a subclass has
    #: settled it; ``None``: the hub's own account.
    _account: Any = None

    # Set by the ServerManager before start(); secrets travel only in the environment.
    token = Unicode(help="The server's API token (goes into JUPYTER_TOKEN).")
    db_url = Unicode(help="The user's database URL with its role password (GILHUB_DB_URL).")
    #: Set by the ServerManager: shows a message on the user's progress page.
    on_progress: Callable[[str], None] | None = None

    @property
    def base_url(self) -> str:
        return user_url(self.hub, self.user.name)

    @property
    def log_path(self) -> Path:
        return Path(self.hub.data_dir) / "logs" / f"{self.user.name}.log"

    def get_env(self) -> dict[str, str]:
        """The server's environment: nothing of the hub's own secrets, plus the user's."""
        env = inherited_environment()
        env.update(self.environment)
        env.update(
            JUPYTER_TOKEN=self.token,
            GILHUB_DB_URL=self.db_url,
            GILHUB_USER=self.user.name,
            GILHUB_HUB_PREFIX=getattr(self.hub, "hub_prefix", "/hub/"),
            GILHUB_UPLOAD_CHUNK_MAX_AGE=str(getattr(self.hub, "upload_chunk_max_age", 86400.0)),
            JUPYTERHUB_USER=self.user.name,
        )
        activity = getattr(self.hub, "activity", None)
        if activity is not None:
            env.update(activity.server_environment())
        env.update(self.identity_env())
        return env

    def home(self) -> Path | None:
        """The user's home where the server runs: its root folder, the kernels' working
        folder and ``HOME`` (a subclass settles it before the start). ``None``: the spawner
        leaves them to the server's environment."""
        return None

    def identity_env(self) -> dict[str, str]:
        """The variables that place a process in the user's home and account."""
        home = self.home()
        if home is None:
            return {}
        env = {**private_jupyter_dirs(home), "HOME": str(home)}
        if self._account is not None:
            env.update(USER=self._account.pw_name, LOGNAME=self._account.pw_name)
        return env

    def server_settings(self, port: int) -> dict[str, str]:
        """The server's non-secret settings, as ``{"Class.trait": value}``."""
        settings = {
            "ServerApp.ip": "127.0.0.1",
            "ServerApp.port": str(port),
            "ServerApp.port_retries": "0",
            "ServerApp.base_url": self.base_url,
            "ServerApp.open_browser": "False",
            # The hub forwards the browser's Host and Origin; the server listens on
            # loopback only and needs its token, so the Host check adds nothing.
            "ServerApp.allow_remote_access": "True",
            "ServerApp.contents_manager_class": self.contents_manager_class,
            # one value for the whole dict (a Python literal): jupyter_server refuses the
            # same setting twice on its command line
            "ServerApp.jpserver_extensions": repr(dict(self.server_extensions)),
            # /user/NAME/ opens the interface the person chose (or the hub's landing_path)
            "ServerApp.default_url": "/" + (self.user.interface or self.hub.landing_path),
        }
        home = self.home()
        if home is not None:
            settings["ServerApp.root_dir"] = str(home)
        if self.allow_root and self._account is None and hub_runs_as_root():
            # the subclasses refuse a root server without allow_root before this
            settings["ServerApp.allow_root"] = "True"
        return settings

    def get_args(self, port: int) -> list[str]:
        """Command-line arguments: :meth:`server_settings`, then :attr:`args`.

        A setting that :attr:`args` gives too is left to :attr:`args` (jupyter_server
        refuses a setting given twice).
        """
        overridden = {arg[2:].split("=", 1)[0] for arg in self.args if arg.startswith("--")}
        settings = self.server_settings(port).items()
        ours = [f"--{name}={value}" for name, value in settings if name not in overridden]
        return [*ours, *self.args]

    async def start(self) -> tuple[str, int]:
        """Start the server; return the (host, port) it will listen on."""
        raise NotImplementedError

    async def poll(self) -> int | None:
        """``None`` while the server runs; once it has ended, its exit status (``0`` if
        unknown)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """End the server (its whole process tree, its job) for good; no error if gone."""
        raise NotImplementedError

    async def start_job(self, cmd: list[str], *, env: dict[str, str], log_path: Path) -> Job:
        """Start ``cmd`` (a job of the user's, such as a notebook run) as the user's server
        would run: in the same account and sandbox, with the same home. This default runs
        it under the hub's own account, in ``log_path``'s folder, and refuses when that
        account is root (a user's code never runs as root); a spawner that isolates users
        overrides it."""
        if hub_runs_as_root():
            raise PermissionError(
                f"{type(self).__name__} cannot run a job in {self.user.name}'s own account,"
                " and a hub running as root never runs a user's code as root."
            )
        child = await start_process(
            cmd, env=env, cwd=log_path.parent, log_path=log_path, nice=self.nice
        )
        return ProcessJob.of_child(child)

    async def find_job(self, state: dict[str, Any]) -> Job | None:
        """The job :meth:`start_job` started, from its :meth:`~Job.state`; ``None`` when it
        has ended."""
        return ProcessJob.find(state)

    async def isolation_status(self) -> Isolation:
        """How this spawner keeps users apart; asked at hub start for its warning and banner."""
        return Isolation(system_users=False, sandbox=False, note="the spawner does not say")

    async def user_removed(self) -> None:
        """The user was removed from the hub: let go of what the spawner keeps for them."""

    def report_progress(self, message: str) -> None:
        """Show ``message`` to the person waiting for the start (e.g. why a job waits)."""
        if self.on_progress is not None:
            self.on_progress(message)

    def address_reported(self, host: str, port: int) -> bool:
        """The starting server says where it listens; ``False``: this spawner does not ask.

        Called by the hub only for the server being started, after checking that the
        report carries that server's own token.
        """
        return False

    def end_reason(self) -> str | None:
        """Why the server ended, in words (after :meth:`poll` saw it end), if known."""
        return None

    def retry_start(self) -> bool:
        """After the process exited before answering: try :meth:`start` again?"""
        return False

    def log_tail(self, lines: int = 40) -> list[str]:
        """The last lines of the server's output, for the error page."""
        return []

    def log_location(self) -> str | None:
        """Where the server's whole log is (a path, a job's output file), if anywhere."""
        return None

    def get_state(self) -> dict[str, Any]:
        """What a restarted hub needs to find this server again (stored as JSON)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""


def hub_runs_as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)  # POSIX only
    return geteuid is not None and geteuid() == 0


def user_url(hub: Any, user_name: str) -> str:
    """The path of a user's server on the hub: ``{base_url}user/NAME/``."""
    base_url = getattr(hub, "base_url", "/") or "/"
    return f"{base_url.rstrip('/')}/user/{user_name}/"


# Variables a child server needs to run and nothing else: the hub's own
# environment may hold its database password or other secrets.
INHERITED_VARIABLES = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
    "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT",
    "USERNAME", "USERPROFILE", "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES",
    "NUMBER_OF_PROCESSORS", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "JUPYTER_PATH",
    "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_PATH", "LD_LIBRARY_PATH", "PYTHONPATH",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
)  # fmt: skip


def scratch_home(hub: Any, user_name: str) -> Path:
    """The user's home when servers share the hub's account: in the hub's data directory."""
    scratch = Path(hub.data_dir) / "scratch"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    home = scratch / user_name
    home.mkdir(mode=0o700, exist_ok=True)
    return home


def private_jupyter_dirs(home: Path) -> dict[str, str]:
    """Per-user places for everything Jupyter keeps per account, in the user's ``home``.

    Set explicitly whatever the isolation: the notebook signing secret and the
    signature database (JUPYTER_DATA_DIR) must never be shared, or a notebook
    signed in one person's server would be trusted (its scripts run) in another's;
    nor may the config directory another server reads, workspaces (open tabs),
    settings, IPython history or kernel connection files.
    """
    config = home / ".jupyter"
    return {
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(config / "lab" / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(config / "lab" / "user-settings"),
        "IPYTHONDIR": str(home / ".ipython"),
    }


def inherited_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
