"""Browser login sessions.

The cookie carries a random session id (signed by tornado); the database keeps
only its sha256, with an expiry, so a leaked database cannot be replayed as
cookies and logging out really ends the session.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.auth.secrets_store import sha256_hex
from gilhub.users import User, user_columns, user_from_row

# last_seen is refreshed at most this often, so that browsing is not a write per request
_TOUCH_INTERVAL = timedelta(minutes=5)


async def create_session(conn: AsyncConnection, user_id: int, lifetime: timedelta) -> str:
    """Start a session; return the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        text(
            "INSERT INTO login_sessions (id_hash, user_id, expires)"
            " VALUES (:id_hash, :user_id, now() + :lifetime)"
        ),
        {"id_hash": sha256_hex(session_id), "user_id": user_id, "lifetime": lifetime},
    )
    return session_id


async def user_for_session(conn: AsyncConnection, session_id: str) -> User | None:
    """The user of a live session, refreshing its ``last_seen`` now and then."""
    result = await conn.execute(
        text(
            "WITH touched AS ("
            "  UPDATE login_sessions SET last_seen = now()"
            "  WHERE id_hash = :id_hash AND last_seen < now() - :touch)"
            f" SELECT {user_columns('u')}"
            " FROM login_sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.id_hash = :id_hash AND s.expires > now()"
        ),
        {"id_hash": sha256_hex(session_id), "touch": _TOUCH_INTERVAL},
    )
    return user_from_row(result.first())


async def delete_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(
        text("DELETE FROM login_sessions WHERE id_hash = :id_hash"),
        {"id_hash": sha256_hex(session_id)},
    )


async def delete_user_sessions(
    conn: AsyncConnection, user_id: int, keep: str | None = None
) -> None:
    """End every session of a user (after a password change), except ``keep``."""
    await conn.execute(
        text("DELETE FROM login_sessions WHERE user_id = :user_id AND id_hash <> :keep"),
        {"user_id": user_id, "keep": sha256_hex(keep) if keep else ""},
    )


async def purge_expired_sessions(conn: AsyncConnection) -> int:
    result = await conn.execute(text("DELETE FROM login_sessions WHERE expires <= now()"))
    return result.rowcount
