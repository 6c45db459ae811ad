"""The hub's view of every user server: start, queue, watch, stop, re-adopt after a restart.

The :class:`ServerManager` (:mod:`gilhub.servers.manager`) does everything that
does not depend on *where* a server runs; a :class:`~gilhub.spawner.base.Spawner`
runs it. The ``servers`` table (:mod:`~gilhub.servers.schema`, queried through
:mod:`~gilhub.servers.query`) lets a restarted hub find running servers again;
:mod:`~gilhub.servers.queue` bounds how many start at once.
"""

from gilhub.servers.manager import ServerManager
from gilhub.servers.models import (
    AddressRefused,
    ServerState,
    ServerStatus,
    SpawnFailed,
    SpawnLimitReached,
    Upstream,
)

__all__ = [
    "AddressRefused",
    "ServerManager",
    "ServerState",
    "ServerStatus",
    "SpawnFailed",
    "SpawnLimitReached",
    "Upstream",
]
