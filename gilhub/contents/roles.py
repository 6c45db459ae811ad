"""PostgreSQL roles for user servers: one login role per gilhub user.

A user's server connects to the database as that user's role, never as the
hub's superuser. The role is granted, by ``contents.grant_storage``
(``sql/006_private_roles.sql``) and ``activity.grant_activity`` (``sql/008_activity.sql``),
what a server needs in the ``contents`` and ``activity`` schemas and nothing else, and
row-level security narrows that to the rows the role owns. Roles share no group: a
role all users could become would be a place where they could all write.

Role names are cluster-wide, so they are derived from the database (the
prefix stored in ``contents.settings``) and from the user name reduced to
safe characters, plus a digest whenever that reduction changed the name.
User-supplied names never reach SQL text except through
:class:`psycopg.sql.Identifier`.

Functions taking an ``AsyncConnection`` work inside the caller's transaction
(role DDL is transactional in PostgreSQL), so an account change and its role
commit or roll back together; those taking the hub's superuser ``AsyncEngine``
run a transaction of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gilhub.activity import query as activity
from gilhub.contents import query

_UNSAFE = re.compile(r"[^a-z0-9_]")
_MAX_NAME_PART = 40


def role_name(prefix: str, user_name: str) -> str:
    """The login role for ``user_name``: ``<prefix>_u_<safe name>[_<digest>]``."""
    safe = _UNSAFE.sub("_", user_name.lower())[:_MAX_NAME_PART]
    if safe != user_name or not safe:
        digest = hashlib.sha256(user_name.encode("utf-8")).hexdigest()[:6]
        safe = f"{safe}_{digest}"
    return f"{prefix}_u_{safe}"


async def _role_prefix(conn: AsyncConnection) -> str:
    return (await conn.execute(text("SELECT role_prefix FROM contents.settings"))).scalar_one()


async def execute_composed(conn: AsyncConnection, statement: sql.Composable) -> None:
    """Run a statement composed with psycopg's identifier quoting."""
    raw = await conn.get_raw_connection()
    await conn.exec_driver_sql(statement.as_string(raw.driver_connection))


#: Advisory lock around grants ("gilgrant" in ASCII; the migrations use another key).
_GRANT_LOCK_KEY = 0x67696C6772616E74


async def _role_exists(conn: AsyncConnection, role: str) -> bool:
    found = await conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


async def create_user_role(conn: AsyncConnection, user_name: str) -> str:
    """Create (or adopt) the login role of ``user_name`` and its storage root; return the role.

    Runs on the caller's connection and never commits: PostgreSQL's role DDL is
    transactional, so a rolled-back account creation leaves no role behind.
    """
    role = role_name(await _role_prefix(conn), user_name)
    if not await _role_exists(conn, role):
        await execute_composed(
            conn,
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOREPLICATION NOBYPASSRLS INHERIT"
            ).format(sql.Identifier(role)),
        )
    # Two sessions granting on the same objects at once (two servers starting) fail with
    # "tuple concurrently updated": grants are made one transaction at a time.
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _GRANT_LOCK_KEY})
    await conn.execute(text("SELECT contents.grant_storage(:role)"), {"role": role})
    await conn.execute(text("SELECT activity.grant_activity(:role)"), {"role": role})
    await query.make_directories(conn, role, "")
    return role


async def ensure_user_role(engine: AsyncEngine, user_name: str) -> str:
    """:func:`create_user_role` in a transaction of its own (servers of older accounts)."""
    try:
        async with engine.begin() as conn:
            return await create_user_role(conn, user_name)
    except (IntegrityError, ProgrammingError):
        # Created meanwhile by another process (duplicate role): adopt it.
        async with engine.begin() as conn:
            return await create_user_role(conn, user_name)


async def rename_user_role(conn: AsyncConnection, role: str, new_user_name: str) -> str:
    """Rename ``role`` after its user, moving the stored notebooks along (no commit)."""
    new_role = role_name(await _role_prefix(conn), new_user_name)
    await execute_composed(
        conn,
        sql.SQL("ALTER ROLE {} RENAME TO {}").format(
            sql.Identifier(role), sql.Identifier(new_role)
        ),
    )
    await query.change_owner(conn, role, new_role)
    await activity.change_owner(conn, role, new_role)
    return new_role


async def drop_role_and_storage(conn: AsyncConnection, role: str) -> None:
    """Delete what ``role`` stores and drop it, on the caller's transaction (no commit)."""
    await query.delete_owner(conn, role)
    await activity.delete_owner(conn, role)
    if await _role_exists(conn, role):
        await execute_composed(conn, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        await execute_composed(conn, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def end_role_sessions(engine: AsyncEngine, role: str) -> None:
    """Disconnect whatever is still logged in as a dropped ``role``."""
    async with engine.connect() as conn:
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
            {"r": role},
        )
        await conn.commit()


async def issue_role_password(engine: AsyncEngine, role: str) -> str:
    """Give ``role`` a fresh random password and return it.

    Only a SCRAM verifier, computed here by libpq, is sent to the server, so
    the password itself never appears in SQL text or server logs. The verifier's
    key stretching is CPU work, so it runs in a thread, not on the event loop
    (libpq needs the connection only for its error messages; it is idle meanwhile).
    """
    password = secrets.token_urlsafe(32)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        verifier = await asyncio.to_thread(
            raw.driver_connection.pgconn.encrypt_password,
            password.encode("utf-8"),
            role.encode("utf-8"),
            b"scram-sha-256",
        )
        await execute_composed(
            conn,
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode("ascii"))
            ),
        )
        await conn.commit()
    return password


async def drop_user_role(engine: AsyncEngine, user_name: str) -> None:
    """Delete the user's storage rows, drop its role and end its sessions."""
    async with engine.begin() as conn:
        role = role_name(await _role_prefix(conn), user_name)
        await drop_role_and_storage(conn, role)
    await end_role_sessions(engine, role)


def user_database_url(admin_url: URL, role: str, password: str) -> URL:
    """The URL a user server connects with: the hub's database, the user's role."""
    return admin_url.set(username=role, password=password)
