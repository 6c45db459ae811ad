"""The ``users`` table and the queries on it.

Every function takes an ``AsyncConnection``; the caller owns the transaction.
These are rows only: account changes with their effects (the user's database
role and notebooks, sessions, tokens, server, caches) go through
:class:`gilhub.accounts.Accounts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.schema import users

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
USERNAME_RULE = (
    "a user name is 1 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit"
)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    db_role: str | None
    created: datetime | None = None
    last_activity: datetime | None = None
    #: the password was generated (one-time): the user must choose a new one first
    must_change_password: bool = False
    #: the person's default interface (a key of INTERFACES); None: the hub's landing_path
    interface: str | None = None


#: The interfaces a person may choose as their default: path under /user/NAME/ -> name.
INTERFACES = {"lab": "JupyterLab", "tree": "Notebook"}


def is_valid_username(name: object) -> bool:
    return isinstance(name, str) and USERNAME_PATTERN.fullmatch(name) is not None


USER_COLUMNS = (
    users.c.id,
    users.c.name,
    users.c.is_admin,
    users.c.db_role,
    users.c.created,
    users.c.last_activity,
    users.c.must_change_password,
    users.c.interface,
)
"""What :func:`user_from_row` reads; select these in queries that join ``users``."""


def user_from_row(row: Row | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row.id,
        name=row.name,
        is_admin=row.is_admin,
        db_role=row.db_role,
        created=row.created,
        last_activity=row.last_activity,
        must_change_password=row.must_change_password,
        interface=row.interface,
    )


async def get_user_by_name(conn: AsyncConnection, name: str) -> User | None:
    if not is_valid_username(name):
        return None
    result = await conn.execute(select(*USER_COLUMNS).where(users.c.name == name))
    return user_from_row(result.first())


async def get_user_by_id(conn: AsyncConnection, user_id: int) -> User | None:
    result = await conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id))
    return user_from_row(result.first())


async def list_users(conn: AsyncConnection) -> list[User]:
    result = await conn.execute(select(*USER_COLUMNS).order_by(users.c.name))
    return [user_from_row(row) for row in result]  # type: ignore[misc]


async def get_password_hash(conn: AsyncConnection, name: str) -> str | None:
    if not is_valid_username(name):
        return None
    result = await conn.execute(select(users.c.password_hash).where(users.c.name == name))
    return result.scalar_one_or_none()


async def insert_user(
    conn: AsyncConnection,
    name: str,
    *,
    password_hash: str | None,
    admin: bool,
    must_change_password: bool,
) -> User | None:
    """The new row, or ``None`` when the name is taken."""
    result = await conn.execute(
        pg_insert(users)
        .values(
            name=name,
            is_admin=admin,
            password_hash=password_hash,
            must_change_password=must_change_password,
        )
        .on_conflict_do_nothing(index_elements=[users.c.name])
        .returning(*USER_COLUMNS)
    )
    return user_from_row(result.first())


async def update_user(conn: AsyncConnection, user_id: int, **values: object) -> User | None:
    """Set columns of one user; the updated row, or ``None`` when it is gone."""
    result = await conn.execute(
        update(users).where(users.c.id == user_id).values(**values).returning(*USER_COLUMNS)
    )
    return user_from_row(result.first())


async def delete_user_row(conn: AsyncConnection, user_id: int) -> bool:
    """Delete the row; sessions, tokens and the server record go with it (ON DELETE CASCADE)."""
    result = await conn.execute(delete(users).where(users.c.id == user_id).returning(users.c.id))
    return result.first() is not None


async def touch_user(conn: AsyncConnection, user_id: int, at: datetime | None = None) -> None:
    """Record activity now, or at ``at`` unless more recent activity is recorded."""
    moment = func.greatest(users.c.last_activity, at) if at else func.now()
    await conn.execute(update(users).where(users.c.id == user_id).values(last_activity=moment))
