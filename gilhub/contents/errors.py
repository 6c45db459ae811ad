"""Turning database failures into HTTP errors a user can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tornado.web import HTTPError

from gilhub.db.outage import OutageReporter, is_database_unavailable, reason


class DatabaseUnavailableError(HTTPError):
    """HTTP 503: the notebook database is not answering (nothing was committed).

    gilhub's server extension adds ``Retry-After`` to every 503 of a user server and
    keeps the per-request logging of these errors out of the server's log.
    """

    MESSAGE = "the notebook database is unavailable"

    def __init__(self, error: BaseException) -> None:
        super().__init__(503, f"{self.MESSAGE}: {reason(error)}")


@asynccontextmanager
async def translate_database_errors(outage: OutageReporter) -> AsyncIterator[None]:
    """Raise HTTP 503 (nothing was committed) when the database connection fails,
    and report the outage to ``outage`` (which logs it once)."""
    try:
        yield
    except HTTPError:
        raise
    except Exception as error:
        if not (is_database_unavailable(error) or isinstance(error, OSError)):
            raise
        outage.failed(error)
        raise DatabaseUnavailableError(error) from error
