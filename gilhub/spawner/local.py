"""The default spawner: a ``jupyter_server`` child process on this machine."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from traitlets import Int

from gilhub.spawner.base import Spawner
from gilhub.spawner.process import ChildProcess, find_process, start_process, terminate_tree

# jupyter_server's words when its port was taken between our pick and its bind.
_PORT_TAKEN_MESSAGES = ("is already in use", "no available port could be found")
_LOG_TAIL_BYTES = 64 * 1024
_LOG_ROTATE_BYTES = 5 * 1024 * 1024


def free_loopback_port() -> int:
    """A port nobody listens on right now (it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hub_runs_as_root() -> bool:
    geteuid = getattr(os, "geteuid", None)  # POSIX only
    return geteuid is not None and geteuid() == 0


class LocalProcessSpawner(Spawner):
    """Runs the server as a child process of the hub, under the hub's own account."""

    port_attempts = Int(
        5, config=True, help="Ports to try when the chosen port is taken before the server binds."
    )
    stop_grace = Int(
        5, config=True, help="Seconds the process tree gets to exit before it is killed."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._child: ChildProcess | None = None
        self._pid: int | None = None
        self._create_time: float | None = None
        self._port: int | None = None
        self._attempts = 0
        self._log_offset = 0

    def pick_port(self) -> int:
        return free_loopback_port()

    def working_dir(self) -> Path:
        """The kernels' working directory: a per-user scratch directory."""
        path = Path(self.hub.data_dir) / "scratch" / self.user.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.process_identity()[0] is None:
            env.update(self.private_jupyter_dirs())
        return env

    def private_jupyter_dirs(self) -> dict[str, str]:
        """Per-user places for what Jupyter otherwise keeps in the account's home.

        Servers that all run under the hub's OS account would otherwise share
        JupyterLab workspaces (one person's open tabs reopening for another),
        settings, IPython history and kernel connection files.
        """
        state = self.working_dir() / ".jupyter-state"
        return {
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "lab-workspaces"),
            "JUPYTERLAB_SETTINGS_DIR": str(state / "lab-settings"),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "IPYTHONDIR": str(state / "ipython"),
        }

    def server_settings(self, port: int) -> dict[str, str]:
        settings = super().server_settings(port)
        settings["ServerApp.root_dir"] = str(self.working_dir())
        if self.process_identity()[0] is None and _hub_runs_as_root():
            # The server runs under the hub's account, so refusing root would only
            # make the hub unusable; SystemUserSpawner is the way to avoid root servers.
            settings["ServerApp.allow_root"] = "True"
        return settings

    def process_identity(self) -> tuple[str | None, int | None]:
        """(user, group) to run the process as; ``None`` keeps the hub's."""
        return None, None

    async def start(self) -> tuple[str, int]:
        self._attempts += 1
        self._port = self.pick_port()
        cwd = self.working_dir()
        cmd = [*self.cmd, *self.get_args(self._port)]
        self._log_offset = self._prepare_log()
        user, group = self.process_identity()
        self._child = await start_process(
            cmd, env=self.get_env(), cwd=cwd, log_path=self.log_path, user=user, group=group
        )
        self._pid, self._create_time = self._child.pid, self._child.create_time
        self.log.info(
            "started server of %s: pid %s, port %s", self.user.name, self._pid, self._port
        )
        return "127.0.0.1", self._port

    def _prepare_log(self) -> int:
        """Rotate an overgrown log; return where this run's output begins."""
        path = self.log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > _LOG_ROTATE_BYTES:
            path.replace(path.with_suffix(".log.1"))
        return path.stat().st_size if path.exists() else 0

    async def poll(self) -> int | None:
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
        self._child, self._pid, self._attempts = None, None, 0

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
        return {"pid": self._pid, "create_time": self._create_time, "port": self._port}

    def load_state(self, state: dict[str, Any]) -> None:
        self._pid = state.get("pid")
        self._create_time = state.get("create_time")
        self._port = state.get("port")
