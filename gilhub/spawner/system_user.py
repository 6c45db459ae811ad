"""Linux, hub running as root: every server as a system account (compatibility name).

:class:`~gilhub.spawner.local.LocalProcessSpawner` does this by default under
root (``isolation = "auto"``). This class keeps the older configuration
working::

    c.GilHub.spawner_class = "gilhub.spawner.system_user.SystemUserSpawner"

which runs NAME's server as the system account NAME itself (no prefix), created
on the first start if missing, in a bubblewrap sandbox (which also gives it the
embedded database's socket); where there is no bubblewrap and the database is
reachable over TCP, set ``c.SystemUserSpawner.isolation = "system-users"``.
"""

from __future__ import annotations

from traitlets import default

from gilhub.spawner.isolation import BOTH
from gilhub.spawner.local import LocalProcessSpawner


class SystemUserSpawner(LocalProcessSpawner):
    """Runs NAME's server as system account NAME, with that account's home."""

    @default("isolation")
    def _default_isolation(self) -> str:
        return BOTH

    @default("account_prefix")
    def _default_account_prefix(self) -> str:
        return ""
