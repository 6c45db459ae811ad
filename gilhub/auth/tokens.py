"""API tokens: random, shown once, stored as sha256 with a short display prefix."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.auth.secrets_store import sha256_hex
from gilhub.users import User, user_columns, user_from_row

TOKEN_PREFIX = "gh_"
_DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 4
_TOUCH_INTERVAL = timedelta(minutes=1)


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


_INFO_COLUMNS = "t.id, u.name, t.prefix, t.note, t.scopes, t.created, t.last_used, t.expires"


async def create_token(
    conn: AsyncConnection, user_id: int, note: str = "", expires_in: timedelta | None = None
) -> NewToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = await conn.execute(
        text(
            "WITH t AS ("
            "  INSERT INTO api_tokens (user_id, token_hash, prefix, note, expires)"
            "  VALUES (:user_id, :hash, :prefix, :note, now() + CAST(:expires_in AS interval))"
            "  RETURNING *)"
            f" SELECT {_INFO_COLUMNS} FROM t JOIN users u ON u.id = t.user_id"
        ),
        {
            "user_id": user_id,
            "hash": sha256_hex(token),
            "prefix": token[:_DISPLAY_PREFIX_LENGTH],
            "note": note,
            "expires_in": expires_in,
        },
    )
    return NewToken(token=token, info=TokenInfo(*result.one()))


async def user_for_token(conn: AsyncConnection, token: str) -> User | None:
    """The owner of a valid, unexpired token; records its use now and then."""
    result = await conn.execute(
        text(
            "WITH touched AS ("
            "  UPDATE api_tokens SET last_used = now()"
            "  WHERE token_hash = :hash"
            "    AND (last_used IS NULL OR last_used < now() - :touch))"
            f" SELECT {user_columns('u')}"
            " FROM api_tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.token_hash = :hash AND (t.expires IS NULL OR t.expires > now())"
        ),
        {"hash": sha256_hex(token), "touch": _TOUCH_INTERVAL},
    )
    return user_from_row(result.first())


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[TokenInfo]:
    result = await conn.execute(
        text(
            f"SELECT {_INFO_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.user_id = :user_id ORDER BY t.id"
        ),
        {"user_id": user_id},
    )
    return [TokenInfo(*row) for row in result]


async def delete_token(conn: AsyncConnection, user_id: int, token_id: int) -> bool:
    result = await conn.execute(
        text("DELETE FROM api_tokens WHERE id = :id AND user_id = :user_id RETURNING id"),
        {"id": token_id, "user_id": user_id},
    )
    return result.first() is not None
