"""API tokens: random, shown once, stored as sha256 with a short display prefix."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.auth.scopes import Identity
from gilhub.auth.secrets_store import sha256_hex
from gilhub.schema import api_tokens, users
from gilhub.users import USER_COLUMNS, user_from_row

# Not a secret: a public marker that lets secret scanners recognise leaked gilhub tokens.
TOKEN_MARKER = "gh_"  # noqa: S105
_DISPLAY_PREFIX_LENGTH = len(TOKEN_MARKER) + 4
_TOUCH_INTERVAL = timedelta(minutes=1)
#: The longest lifetime a token may be given.
MAX_TOKEN_LIFETIME = timedelta(days=10 * 365)


@dataclass(frozen=True)
class TokenInfo:
    """A token's public record (never the token itself)."""

    id: int
    user: str
    prefix: str
    note: str
    scopes: list[str]
    created: datetime
    last_used: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class NewToken:
    token: str
    info: TokenInfo


_INFO_COLUMNS = (
    api_tokens.c.id,
    users.c.name,
    api_tokens.c.prefix,
    api_tokens.c.note,
    api_tokens.c.scopes,
    api_tokens.c.created,
    api_tokens.c.last_used,
    api_tokens.c.expires,
)
_WITH_OWNER = api_tokens.join(users, users.c.id == api_tokens.c.user_id)


async def create_token(
    conn: AsyncConnection,
    user_id: int,
    note: str = "",
    expires_in: timedelta | None = None,
    scopes: tuple[str, ...] = ("inherit",),
) -> NewToken:
    """A new token of ``user_id`` with ``scopes`` as given (checked by the caller)."""
    token = TOKEN_MARKER + secrets.token_urlsafe(32)
    token_id = (
        await conn.execute(
            insert(api_tokens)
            .values(
                user_id=user_id,
                token_hash=sha256_hex(token),
                prefix=token[:_DISPLAY_PREFIX_LENGTH],
                note=note,
                scopes=list(scopes),
                expires=func.now() + expires_in if expires_in else None,
            )
            .returning(api_tokens.c.id)
        )
    ).scalar_one()
    info = await conn.execute(
        select(*_INFO_COLUMNS).select_from(_WITH_OWNER).where(api_tokens.c.id == token_id)
    )
    return NewToken(token=token, info=TokenInfo(*info.one()))


async def identity_for_token(conn: AsyncConnection, token: str) -> Identity | None:
    """The owner and scopes of a valid, unexpired token; records its use now and then."""
    token_hash = sha256_hex(token)
    touch = (
        update(api_tokens)
        .where(api_tokens.c.token_hash == token_hash)
        .where(
            or_(
                api_tokens.c.last_used.is_(None),
                api_tokens.c.last_used < func.now() - _TOUCH_INTERVAL,
            )
        )
        .values(last_used=func.now())
        .cte("touched")
    )
    query = (
        select(*USER_COLUMNS, api_tokens.c.scopes)
        .select_from(_WITH_OWNER)
        .where(api_tokens.c.token_hash == token_hash)
        .where(or_(api_tokens.c.expires.is_(None), api_tokens.c.expires > func.now()))
        .add_cte(touch)
    )
    row = (await conn.execute(query)).first()
    user = user_from_row(row)
    if user is None:
        return None
    return Identity(user, tuple(row.scopes))


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[TokenInfo]:
    result = await conn.execute(
        select(*_INFO_COLUMNS)
        .select_from(_WITH_OWNER)
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id)
    )
    return [TokenInfo(*row) for row in result]


async def delete_token(conn: AsyncConnection, user_id: int, token_id: int) -> bool:
    result = await conn.execute(
        delete(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
        .returning(api_tokens.c.id)
    )
    return result.first() is not None
