"""Browser login sessions.

The cookie carries a random session id (signed by tornado); the database keeps
only its sha256, with an expiry, so a leaked database cannot be replayed as
cookies and logging out really ends the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.auth.secrets_store import sha256_hex
from gilhub.schema import login_sessions, users
from gilhub.users import USER_COLUMNS, User, user_from_row

# last_seen is refreshed at most this often, so that browsing is not a write per request
_TOUCH_INTERVAL = timedelta(minutes=5)


async def create_session(conn: AsyncConnection, user_id: int, lifetime: timedelta) -> str:
    """Start a session; return the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        insert(login_sessions).values(
            id_hash=sha256_hex(session_id), user_id=user_id, expires=func.now() + lifetime
        )
    )
    return session_id


async def user_for_session(conn: AsyncConnection, session_id: str) -> User | None:
    """The user of a live session, refreshing its ``last_seen`` now and then."""
    id_hash = sha256_hex(session_id)
    touch = (
        update(login_sessions)
        .where(login_sessions.c.id_hash == id_hash)
        .where(login_sessions.c.last_seen < func.now() - _TOUCH_INTERVAL)
        .values(last_seen=func.now())
        .cte("touched")
    )
    query = (
        select(*USER_COLUMNS)
        .select_from(login_sessions.join(users, users.c.id == login_sessions.c.user_id))
        .where(login_sessions.c.id_hash == id_hash)
        .where(login_sessions.c.expires > func.now())
        .add_cte(touch)
    )
    return user_from_row((await conn.execute(query)).first())


def session_xsrf_token(secret: bytes, session_id: str) -> str:
    """The XSRF token of one login session: useless in any other, unforgeable without
    the hub's secret."""
    return hmac.new(secret, b"xsrf\0" + session_id.encode("utf-8"), hashlib.sha256).hexdigest()


async def delete_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(
        delete(login_sessions).where(login_sessions.c.id_hash == sha256_hex(session_id))
    )


async def delete_user_sessions(
    conn: AsyncConnection, user_id: int, keep: str | None = None
) -> None:
    """End every session of a user (after a password change), except ``keep``."""
    query = delete(login_sessions).where(login_sessions.c.user_id == user_id)
    if keep is not None:
        query = query.where(login_sessions.c.id_hash != sha256_hex(keep))
    await conn.execute(query)


async def purge_expired_sessions(conn: AsyncConnection) -> int:
    result = await conn.execute(
        delete(login_sessions).where(login_sessions.c.expires <= func.now())
    )
    return result.rowcount
