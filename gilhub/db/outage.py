"""A lost database: how to recognise it, what to tell clients, and logging it once.

While PostgreSQL is down every request that needs it fails the same way.
Logging a traceback per request buries the one fact that matters (the
database is gone, since when, and when it came back), so the hub and the
user servers' contents manager hand such failures to an
:class:`OutageReporter`, which logs one line when an outage starts and one
when the database answers again, and answer HTTP 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.db.engine import DatabaseUnavailable

#: Seconds clients are told to wait (``Retry-After``) before trying again.
RETRY_AFTER_SECONDS = 5

UNAVAILABLE_MESSAGE = "The database is not answering; try again in a moment."

_UNAVAILABLE = (
    DatabaseUnavailable,
    OperationalError,
    InterfaceError,
    PoolTimeout,  # every pooled connection is busy: try again, as for an outage
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` means the database could not be reached (as opposed to a bad query)."""
    if isinstance(error, _UNAVAILABLE):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def reason(error: BaseException) -> str:
    """The first line of the driver's message (no SQL, no traceback)."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class OutageReporter:
    """Logs one line when the database stops answering and one when it answers again.

    :meth:`failed` is called for every request that found the database gone;
    :meth:`watch` makes every successful connection checkout of an engine end
    the outage (a checkout follows a successful ``pool_pre_ping``).
    """

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, what: str = "database") -> None:
        self.log = log
        self.what = what
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        if self._since is not None:
            return
        self._since = time.monotonic()
        self.log.warning(
            "The %s is unavailable (%s); answering HTTP 503 until it is back",
            self.what,
            reason(error),
        )

    def answered(self) -> None:
        if self._since is None:
            return
        seconds = time.monotonic() - self._since
        self._since = None
        self.log.info("The %s is available again (after %.0f s)", self.what, seconds)

    def watch(self, engine: AsyncEngine) -> None:
        """End the outage on the first connection ``engine`` gets from a live database."""

        def checked_out(*_: Any) -> None:
            self.answered()

        event.listen(engine.sync_engine, "checkout", checked_out)
