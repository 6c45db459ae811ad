"""Turning database failures into HTTP errors a user can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tornado.web import HTTPError

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


@asynccontextmanager
async def translate_database_errors() -> AsyncIterator[None]:
    """Raise HTTP 503 (nothing was committed) when the database connection fails."""
    try:
        yield
    except HTTPError:
        raise
    except _UNAVAILABLE as error:
        raise database_unavailable(error) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise database_unavailable(error) from error
        raise
