"""Rows in PostgreSQL's binary format, on a SQLAlchemy connection.

SQLAlchemy's psycopg dialect fetches results as text, where ``bytea`` travels
hex-encoded (twice its size) and is decoded in Python: several times slower
for a megabyte notebook. SQLAlchemy has no switch for it, so this uses
psycopg's own binary cursor on the same connection and transaction.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy.ext.asyncio import AsyncConnection


async def fetch_one_binary(conn: AsyncConnection, statement: str, params: tuple) -> Any:
    """The first row of ``statement`` (a named tuple), or ``None``."""
    raw = await conn.get_raw_connection()
    cursor = raw.driver_connection.cursor(binary=True, row_factory=namedtuple_row)
    async with cursor:
        await cursor.execute(statement, params)
        return await cursor.fetchone()
