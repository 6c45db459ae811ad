"""jupyter_server's edge: where the storage's errors and database failures become HTTP errors.

:mod:`.paths` and :mod:`.query` raise :class:`~.errors.StorageError` (they know
nothing of HTTP, so the hub's repository can call them too); the contents
manager and checkpoints turn them into ``HTTPError`` with these helpers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tornado.web import HTTPError

from gilhub.contents.errors import InvalidPath, StorageError
from gilhub.contents.paths import normalize
from gilhub.db.outage import OutageReporter, is_database_unavailable, reason


class DatabaseUnavailableError(HTTPError):
    """HTTP 503: the notebook database is not answering (nothing was committed).

    gilhub's server extension adds ``Retry-After`` to every 503 of a user server and
    keeps the per-request logging of these errors out of the server's log.
    """

    MESSAGE = "the notebook database is unavailable"

    def __init__(self, error: BaseException) -> None:
        super().__init__(503, f"{self.MESSAGE}: {reason(error)}")


def api_path(path: str) -> str:
    """:func:`.paths.normalize` at the edge: an invalid path is HTTP 400."""
    try:
        return normalize(path)
    except InvalidPath as error:
        raise HTTPError(400, str(error).replace("%", "%%")) from None


@asynccontextmanager
async def translate_database_errors(outage: OutageReporter) -> AsyncIterator[None]:
    """HTTP 400 for what the storage refuses; 503 (nothing was committed) when the
    database connection fails, reported to ``outage`` (which logs it once)."""
    try:
        yield
    except HTTPError:
        raise
    except StorageError as error:
        raise HTTPError(400, str(error).replace("%", "%%")) from None
    except Exception as error:
        if not (is_database_unavailable(error) or isinstance(error, OSError)):
            raise
        outage.failed(error)
        raise DatabaseUnavailableError(error) from error
