"""gilhub's people: the ``users`` table and the queries on it.

Every function takes an ``AsyncConnection``; the caller owns the transaction.
Creating a user also creates the PostgreSQL role its server will log in with
(:func:`gilhub.contents.roles.ensure_user_role`); removing one drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.auth.passwords import hash_password
from gilhub.schema import users

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
USERNAME_RULE = (
    "a user name is 1 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit"
)


class InvalidUsername(ValueError):
    """The name does not follow :data:`USERNAME_RULE`."""


class UserExists(ValueError):
    """A user of that name already exists."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    db_role: str | None
    created: datetime | None = None
    last_activity: datetime | None = None


def is_valid_username(name: object) -> bool:
    return isinstance(name, str) and USERNAME_PATTERN.fullmatch(name) is not None


def check_username(name: object) -> str:
    if not is_valid_username(name):
        raise InvalidUsername(USERNAME_RULE)
    return name  # type: ignore[return-value]


USER_COLUMNS = (
    users.c.id,
    users.c.name,
    users.c.is_admin,
    users.c.db_role,
    users.c.created,
    users.c.last_activity,
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
    )


async def get_user_by_name(conn: AsyncConnection, name: str) -> User | None:
    if not is_valid_username(name):
        return None
    result = await conn.execute(select(*USER_COLUMNS).where(users.c.name == name))
    return user_from_row(result.first())


async def list_users(conn: AsyncConnection) -> list[User]:
    result = await conn.execute(select(*USER_COLUMNS).order_by(users.c.name))
    return [user_from_row(row) for row in result]  # type: ignore[misc]


async def get_password_hash(conn: AsyncConnection, name: str) -> str | None:
    if not is_valid_username(name):
        return None
    result = await conn.execute(select(users.c.password_hash).where(users.c.name == name))
    return result.scalar_one_or_none()


async def create_user(
    conn: AsyncConnection, name: str, password: str | None = None, admin: bool = False
) -> User:
    """Insert the user and create its database role.

    Raises :class:`InvalidUsername` or :class:`UserExists`.
    """
    from gilhub.contents.roles import ensure_user_role

    check_username(name)
    password_hash = await hash_password(password) if password is not None else None
    result = await conn.execute(
        pg_insert(users)
        .values(name=name, is_admin=admin, password_hash=password_hash)
        .on_conflict_do_nothing(index_elements=[users.c.name])
        .returning(*USER_COLUMNS)
    )
    user = user_from_row(result.first())
    if user is None:
        raise UserExists(f"user {name!r} already exists")
    role = await ensure_user_role(conn.engine, name)
    await conn.execute(update(users).where(users.c.id == user.id).values(db_role=role))
    return User(user.id, user.name, user.is_admin, role, user.created, user.last_activity)


async def delete_user(conn: AsyncConnection, name: str) -> bool:
    """Remove the user, its sessions, tokens, server record and stored notebooks."""
    from gilhub.contents.roles import drop_user_role

    result = await conn.execute(delete(users).where(users.c.name == name).returning(users.c.id))
    if result.first() is None:
        return False
    await drop_user_role(conn.engine, name)
    return True


async def set_password(conn: AsyncConnection, name: str, password: str) -> bool:
    password_hash = await hash_password(password)
    result = await conn.execute(
        update(users)
        .where(users.c.name == name)
        .values(password_hash=password_hash)
        .returning(users.c.id)
    )
    return result.first() is not None


async def set_admin(conn: AsyncConnection, name: str, admin: bool) -> bool:
    result = await conn.execute(
        update(users).where(users.c.name == name).values(is_admin=admin).returning(users.c.id)
    )
    return result.first() is not None


async def touch_user(conn: AsyncConnection, user_id: int, at: datetime | None = None) -> None:
    """Record activity now, or at ``at`` unless more recent activity is recorded."""
    moment = func.greatest(users.c.last_activity, at) if at else func.now()
    await conn.execute(update(users).where(users.c.id == user_id).values(last_activity=moment))
