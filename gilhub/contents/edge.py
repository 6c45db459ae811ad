"""jupyter_server's edge: where the storage's errors and database failures become HTTP errors.

:mod:`.paths` and :mod:`.query` raise :class:`~.errors.StorageError` (they know
nothing of HTTP, so the hub's repository can call them too); the contents
manager and checkpoints turn them into ``HTTPError`` with these helpers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tornado.web import HTTPError

from gilhub.contents.errors import InvalidPath, StorageError
from gilhub.contents.paths import normalize

_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OperationalError,
    InterfaceError,
    OSError,
)


def database_unavailable(error: BaseException) -> HTTPError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0:1]
    detail = reason[0] if reason else type(error).__name__
    return HTTPError(503, f"the notebook database is unavailable: {detail}")


def api_path(path: str) -> str:
    """:func:`.paths.normalize` at the edge: an invalid path is HTTP 400."""
    try:
        return normalize(path)
    except InvalidPath as error:
        raise HTTPError(400, str(error).replace("%", "%%")) from None


@asynccontextmanager
async def translate_database_errors() -> AsyncIterator[None]:
    """HTTP 400 for what the storage refuses; 503 (nothing was committed) when the
    database connection fails."""
    try:
        yield
    except HTTPError:
        raise
    except StorageError as error:
        raise HTTPError(400, str(error).replace("%", "%%")) from None
    except _UNAVAILABLE as error:
        raise database_unavailable(error) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise database_unavailable(error) from error
        raise
