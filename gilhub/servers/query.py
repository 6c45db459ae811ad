"""Queries on the ``servers`` table (and the activity they carry over to ``users``).

Every function takes an ``AsyncConnection``; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, column, delete, or_, select, update, values
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.schema import users
from gilhub.servers.models import ServerState
from gilhub.servers.schema import servers
from gilhub.users import USER_COLUMNS, User, user_from_row


@dataclass(frozen=True)
class ServerRecord:
    """One row of ``servers``: what a restarted hub needs to find a server again."""

    user_id: int
    state: ServerState
    host: str
    port: int
    token_hash: str
    token_nonce: str
    spawner_state: dict[str, Any]
    started: datetime
    last_activity: datetime | None = None


async def save_server(conn: AsyncConnection, record: ServerRecord) -> None:
    """Insert or replace the user's row (the last activity of a replaced row is kept)."""
    values = {
        "user_id": record.user_id,
        "state": record.state.value,
        "host": record.host,
        "port": record.port,
        "token_hash": record.token_hash,
        "token_nonce": record.token_nonce,
        "spawner_state": record.spawner_state,
        "started": record.started,
        "last_activity": record.last_activity or record.started,
    }
    statement = pg_insert(servers).values(values)
    replaced = {name: statement.excluded[name] for name in values if name != "last_activity"}
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[servers.c.user_id], set_=replaced)
    )


async def delete_server(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(delete(servers).where(servers.c.user_id == user_id))


async def recorded_servers(conn: AsyncConnection) -> list[tuple[User, ServerRecord]]:
    """Every recorded server with its user, for re-adoption after a restart."""
    rows = await conn.execute(
        select(*USER_COLUMNS, *servers.c).join_from(servers, users, users.c.id == servers.c.user_id)
    )
    return [(user_from_row(row), _record(row)) for row in rows]  # type: ignore[misc]


async def server_record(conn: AsyncConnection, user_id: int) -> ServerRecord | None:
    """The user's recorded server (starting, running or stopping), if any."""
    row = (await conn.execute(select(servers).where(servers.c.user_id == user_id))).first()
    return _record(row) if row is not None else None


def _record(row: Any) -> ServerRecord:
    return ServerRecord(
        user_id=row.user_id,
        state=ServerState(row.state),
        host=row.host,
        port=row.port or 0,
        token_hash=row.token_hash or "",
        token_nonce=row.token_nonce or "",
        spawner_state=row.spawner_state or {},
        started=row.started,
        last_activity=row.last_activity,
    )


async def record_server_activity(conn: AsyncConnection, user_id: int, when: datetime) -> None:
    """Move the server's last activity forward to ``when`` (never back)."""
    await conn.execute(
        update(servers)
        .where(servers.c.user_id == user_id, servers.c.last_activity < when)
        .values(last_activity=when)
    )


async def record_servers_activity(conn: AsyncConnection, times: Mapping[int, datetime]) -> None:
    """Move several servers' (and their users') last activity forward at once: one
    statement per table for all of them, keyed by user id."""
    if not times:
        return
    changed = values(
        column("user_id", Integer), column("at", DateTime(timezone=True)), name="changed"
    ).data(list(times.items()))
    await conn.execute(
        update(servers)
        .where(servers.c.user_id == changed.c.user_id, servers.c.last_activity < changed.c.at)
        .values(last_activity=changed.c.at)
    )
    await conn.execute(
        update(users)
        .where(
            users.c.id == changed.c.user_id,
            or_(users.c.last_activity.is_(None), users.c.last_activity < changed.c.at),
        )
        .values(last_activity=changed.c.at)
    )
