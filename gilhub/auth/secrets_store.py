"""Small opaque values the hub keeps in the database (``hub_secrets``)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def get_or_create_secret(conn: AsyncConnection, name: str, nbytes: int = 32) -> bytes:
    """The persistent secret ``name``; created on first use (race-free)."""
    await conn.execute(
        text("INSERT INTO hub_secrets (name, value) VALUES (:name, :value) ON CONFLICT DO NOTHING"),
        {"name": name, "value": secrets.token_bytes(nbytes)},
    )
    result = await conn.execute(
        text("SELECT value FROM hub_secrets WHERE name = :name"), {"name": name}
    )
    return bytes(result.scalar_one())


async def claim_once(conn: AsyncConnection, name: str) -> bool:
    """True exactly once per database: for one-time actions such as the first admin."""
    result = await conn.execute(
        text(
            "INSERT INTO hub_secrets (name, value) VALUES (:name, :value)"
            " ON CONFLICT DO NOTHING RETURNING name"
        ),
        {"name": name, "value": b"claimed"},
    )
    return result.first() is not None


def sha256_hex(value: str) -> str:
    """How session ids and API tokens are stored: random values need no slow hash."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
