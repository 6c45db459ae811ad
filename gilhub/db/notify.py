"""Hearing PostgreSQL notifications (``LISTEN``) in the hub, through database outages.

Other processes (the command line, runs' workers) say what they changed with
``pg_notify`` in their transaction; the hub hears it on one connection per
channel and reconnects after an outage, logging the loss and the return once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL


def libpq_url(url: URL) -> str:
    """A SQLAlchemy URL as libpq (psycopg) takes it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Calls ``heard(payload)`` for every notification on ``channel``, until stopped.

    ``connected()`` is called each time listening (re)starts: what was sent while
    nobody listened is lost, so a caller may look again then.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        heard: Callable[[str], Awaitable[None]],
        log: logging.Logger | logging.LoggerAdapter,
        *,
        what: str,
        connected: Callable[[], None] = lambda: None,
        retry_interval: float = 2.0,
    ) -> None:
        self.url, self.channel, self.heard, self.log = url, channel, heard, log
        self.what, self.connected, self.retry_interval = what, connected, retry_interval
        self._task: asyncio.Task[None] | None = None
        self._lost = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen_forever(self) -> None:
        """Listen, reconnecting after a database outage (logged once, not per retry)."""
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as error:
                if not self._lost:
                    self.log.warning("Not hearing %s: %s", self.what, error)
                self._lost = True
                await asyncio.sleep(self.retry_interval)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name="gilhub-hub"
        ) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            if self._lost:
                self.log.info("Hearing %s again", self.what)
                self._lost = False
            self.connected()
            async for notification in conn.notifies():
                await self.heard(notification.payload)
