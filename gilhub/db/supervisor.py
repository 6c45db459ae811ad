"""The hub keeps its embedded PostgreSQL running.

The embedded cluster is the hub's own: nobody else will notice that its
postmaster died (killed, out of memory, a crash). The supervisor looks at the
postmaster's process every ``check_interval`` seconds and, once it is gone,
starts PostgreSQL again at the same address, retrying with a growing pause
while it refuses (the dead server's backends may take a moment to exit).
Meanwhile the hub and the user servers answer 503; their connection pools
replace the dead connections by themselves (``pool_pre_ping``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from gilhub.db.embedded import EmbeddedDatabase
from gilhub.db.outage import reason


class PostgresSupervisor:
    """Restarts the embedded PostgreSQL whenever its postmaster has died."""

    def __init__(
        self,
        database: EmbeddedDatabase,
        log: logging.Logger,
        *,
        check_interval: float = 1.0,
        first_retry: float = 1.0,
        max_retry: float = 30.0,
    ) -> None:
        self.database = database
        self.log = log
        self.check_interval = check_interval
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._attempt: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching. A start under way is waited for (a thread cannot be cancelled), so
        that the server it starts is known to the wheel and stopped with the hub."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._attempt is not None:
            with contextlib.suppress(Exception):
                await self._attempt
            self._attempt = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            # one stat of the process: far too quick to need a thread
            if self.database.postmaster() is None:
                await self._restart()

    async def _restart(self) -> None:
        self.log.warning(
            "The embedded PostgreSQL in %s has stopped; restarting it", self.database.pgdata
        )
        delay = self.first_retry
        for attempt in itertools.count(1):
            try:
                self._attempt = asyncio.ensure_future(asyncio.to_thread(self.database.restart))
                await asyncio.shield(self._attempt)
            except Exception as error:  # pg_ctl fails in several ways; all mean "not yet"
                self.log.warning(
                    "Restarting the embedded PostgreSQL failed (attempt %d: %s); again in %.0f s",
                    attempt,
                    reason(error),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.max_retry)
                continue
            self.restarts += 1
            postmaster = self.database.postmaster()
            self.log.warning(
                "The embedded PostgreSQL is running again (pid %s, attempt %d)",
                postmaster.pid if postmaster else "?",
                attempt,
            )
            return
