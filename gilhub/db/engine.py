"""Async SQLAlchemy engines over psycopg 3.

Every database call in the hub and in the contents manager goes through an
``AsyncEngine`` built here: psycopg 3 speaks asyncio natively, so no query
ever blocks the event loop and no thread pool is needed.

psycopg's async mode needs a selector event loop; on Windows gilhub therefore
runs on ``WindowsSelectorEventLoopPolicy`` (see :func:`use_selector_loop_on_windows`),
as jupyter_server itself does.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DRIVER = "postgresql+psycopg"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the message says where and why."""


def sqlalchemy_url(url: str | URL) -> URL:
    """Normalise ``postgresql://…`` (libpq style) to the psycopg 3 dialect."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername=DRIVER)
    if parsed.drivername != DRIVER:
        raise ValueError(f"gilhub needs a PostgreSQL URL, got driver {parsed.drivername!r}")
    return parsed


def create_engine(url: str | URL, *, pool_size: int = 5, **kwargs) -> AsyncEngine:
    """An async engine that survives a database restart.

    ``pool_pre_ping`` replaces connections that died while idle, so the first
    request after the database comes back works instead of failing once more.
    """
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"connect_timeout": 10, "application_name": "gilhub"},
        **kwargs,
    )


def use_selector_loop_on_windows() -> None:
    """psycopg's async mode cannot run on the Proactor loop (Windows' default)."""
    if sys.platform == "win32":
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
