"""The pluggable spawner API.

A spawner starts, watches and stops one user's ``jupyter_server``. The
:class:`~gilhub.servers.ServerManager` owns everything generic (tokens, the
``servers`` table, readiness, progress, culling) and asks the spawner only to
run a process somewhere and say where it listens. A site that outgrows one
machine subclasses :class:`Spawner` (a Slurm job, a Kubernetes pod) and sets
``GilHub.spawner_class``; :class:`~gilhub.spawner.local.LocalProcessSpawner`
is the default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Dict, Float, List, Unicode
from traitlets.config import LoggingConfigurable


class Spawner(LoggingConfigurable):
    """Start, poll and stop one user's server. Subclasses implement the ``async`` methods."""

    user = AnyTrait(help="The gilhub.users.User whose server this is.")
    hub = AnyTrait(help="The GilHub application.")

    cmd = List(
        Unicode(),
        default_value=[sys.executable, "-m", "jupyter_server"],
        config=True,
        help="Command that starts the single-user server (the arguments gilhub adds follow it).",
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
    contents_manager_class = Unicode(
        "gilhub.contents.PostgresContentsManager",
        config=True,
        help="Dotted name of the server's contents manager.",
    )

    # Set by the ServerManager before start(); secrets travel only in the environment.
    token = Unicode(help="The server's API token (goes into JUPYTER_TOKEN).")
    db_url = Unicode(help="The user's database URL with its role password (GILHUB_DB_URL).")

    @property
    def base_url(self) -> str:
        return user_url(self.hub, self.user.name)

    @property
    def log_path(self) -> Path:
        return Path(self.hub.data_dir) / "logs" / f"{self.user.name}.log"

    def get_env(self) -> dict[str, str]:
        """The server's environment: nothing of the hub's own secrets, plus the user's."""
        env = _inherited_environment()
        env.update(self.environment)
        env.update(
            JUPYTER_TOKEN=self.token,
            GILHUB_DB_URL=self.db_url,
            GILHUB_USER=self.user.name,
            GILHUB_HUB_PREFIX=getattr(self.hub, "hub_prefix", "/hub/"),
            GILHUB_UPLOAD_CHUNK_MAX_AGE=str(getattr(self.hub, "upload_chunk_max_age", 86400.0)),
            JUPYTERHUB_USER=self.user.name,
        )
        return env

    def server_settings(self, port: int) -> dict[str, str]:
        """The server's non-secret settings, as ``{"Class.trait": value}``."""
        return {
            "ServerApp.ip": "127.0.0.1",
            "ServerApp.port": str(port),
            "ServerApp.port_retries": "0",
            "ServerApp.base_url": self.base_url,
            "ServerApp.open_browser": "False",
            # The hub forwards the browser's Host and Origin; the server listens on
            # loopback only and needs its token, so the Host check adds nothing.
            "ServerApp.allow_remote_access": "True",
            "ServerApp.contents_manager_class": self.contents_manager_class,
            "ServerApp.jpserver_extensions": "gilhub.serverext=True",
        }

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
        """``None`` while the server's process lives, else its exit code (or 1 if unknown)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """End the server's process (tree) for good."""
        raise NotImplementedError

    def retry_start(self) -> bool:
        """After the process exited before answering: try :meth:`start` again?"""
        return False

    def log_tail(self, lines: int = 40) -> list[str]:
        """The last lines of the server's output, for the error page."""
        return []

    def get_state(self) -> dict[str, Any]:
        """What a restarted hub needs to find this server again (stored as JSON)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""


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


def _inherited_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
