"""Linux, hub running as root: each user's server runs as the system user of the same name.

This is the full-isolation set-up: a user's kernels can read only what that
system account can read. Enable it with::

    c.GilHub.spawner_class = "gilhub.spawner.system_user.SystemUserSpawner"

The ``pwd`` module is imported only inside the methods, which run only on this
path, so importing this module is safe on Windows.
"""

from __future__ import annotations

import os
from pathlib import Path

from gilhub.spawner.local import LocalProcessSpawner


class SystemUserSpawner(LocalProcessSpawner):
    """Runs NAME's server as system user NAME, with that user's HOME as working directory."""

    def _account(self):
        import pwd  # POSIX only; this spawner is refused elsewhere (see start)

        try:
            return pwd.getpwnam(self.user.name)
        except KeyError:
            raise RuntimeError(f"there is no system user named {self.user.name!r}") from None

    def working_dir(self) -> Path:
        return Path(self._account().pw_dir)

    def process_identity(self) -> tuple[str | None, int | None]:
        account = self._account()
        return account.pw_name, account.pw_gid

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        account = self._account()
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        return env

    async def start(self) -> tuple[str, int]:
        if os.name != "posix" or os.geteuid() != 0:
            raise RuntimeError("SystemUserSpawner needs a hub running as root on Linux")
        return await super().start()
