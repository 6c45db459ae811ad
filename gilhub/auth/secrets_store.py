"""Small opaque values the hub keeps in the database (``hub_secrets``)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.schema import hub_secrets


async def get_or_create_secret(conn: AsyncConnection, name: str, nbytes: int = 32) -> bytes:
    """The persistent secret ``name``; created on first use (race-free)."""
    await conn.execute(
        insert(hub_secrets)
        .values(name=name, value=secrets.token_bytes(nbytes))
        .on_conflict_do_nothing()
    )
    result = await conn.execute(select(hub_secrets.c.value).where(hub_secrets.c.name == name))
    return bytes(result.scalar_one())


async def claim_once(conn: AsyncConnection, name: str) -> bool:
    """True exactly once per database: for one-time actions such as the first admin."""
    result = await conn.execute(
        insert(hub_secrets)
        .values(name=name, value=b"claimed")
        .on_conflict_do_nothing()
        .returning(hub_secrets.c.name)
    )
    return result.first() is not None


def sha256_hex(value: str) -> str:
    """How session ids and API tokens are stored: random values need no slow hash."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
