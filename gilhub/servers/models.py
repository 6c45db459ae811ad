"""What the hub says about a user server: its state, its status, where it is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class ServerState(str, Enum):
    """Where a user server is in its life. ``str`` so that it compares, renders and is
    stored as its value (``"running"``); Python 3.10 has no ``StrEnum``."""

    STOPPED = "stopped"
    #: Waiting for a start slot (``ServerManager.concurrent_spawn_limit``).
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"

    def __str__(self) -> str:
        return self.value

    @property
    def pending(self) -> str | None:
        """JupyterHub's ``pending`` field: ``"spawn"``, ``"stop"`` or ``None``."""
        return _PENDING.get(self)


_PENDING = {
    ServerState.QUEUED: "spawn",
    ServerState.STARTING: "spawn",
    ServerState.STOPPING: "stop",
}
#: States in which a server counts against ``active_server_limit`` (JupyterHub's "active").
ACTIVE_STATES = frozenset(_PENDING) | {ServerState.RUNNING}


class SpawnFailed(RuntimeError):
    """The server could not be started; the message is shown to its user."""


class AddressRefused(RuntimeError):
    """A server's report of its address was not taken (not that server's token, or no
    server of that user waiting for one)."""


class SpawnLimitReached(RuntimeError):
    """Too many servers are starting or running to start another now.

    ``retry_after`` is the number of seconds a client should wait (HTTP ``Retry-After``).
    """

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ServerStatus:
    state: ServerState
    url: str
    started: datetime | None = None
    last_activity: datetime | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)
    #: Where the server's full log is (from the spawner), for the failure page.
    log_location: str | None = None


@dataclass(frozen=True)
class Upstream:
    """Where the proxy reaches a server (loopback, or a cluster node), and the token it
    adds to each request."""

    host: str
    port: int
    token: str

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"http://{host}:{self.port}{path}"
