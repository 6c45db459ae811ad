"""What a run's worker is given to act as its user: a database login and an API token.

**Database.** A worker must not share its user's role's password: the hub gives
that role a fresh password at every server start, which would lock out a
running worker (and a run's fresh password would lock out the user's server).
So each run gets a login role of its own, ``<prefix>_run_<id>``, a member of
the user's role only, that its connections turn into the user's role at once
(``options=-c role=…``): row-level security then sees the user's own
``current_user``, exactly as for the user's server. The role is dropped when
the run ends, so its password lives no longer than the run.

**Token.** An API token of the run's user, with the scopes the site configures,
expiring with the run's timeout and deleted when the run ends.

The hub's superuser engine is used throughout.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.auth.tokens import NewToken, create_token, delete_token
from gilhub.contents import roles
from gilhub.runs.query import Run

#: The environment variable that gives the worker its database URL (the run's login).
DB_URL_ENV = "GILHUB_RUN_DB_URL"


async def _run_role(engine: AsyncEngine, run_id: int) -> str:
    async with engine.connect() as conn:
        prefix = (await conn.execute(text("SELECT role_prefix FROM contents.settings"))).scalar()
    return f"{prefix}_run_{run_id}"


async def run_database_url(engine: AsyncEngine, admin_url: URL, run: Run) -> str:
    """A URL that logs in as the run's own role and acts as its user's role."""
    role = await _run_role(engine, run.id)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT runs.grant_runs(:role)"), {"role": run.owner})
        await roles.execute_composed(
            conn,
            sql.SQL("DROP ROLE IF EXISTS {}; CREATE ROLE {} LOGIN INHERIT IN ROLE {}").format(
                sql.Identifier(role), sql.Identifier(role), sql.Identifier(run.owner)
            ),
        )
        await conn.commit()
    password = await roles.issue_role_password(engine, role)
    url = roles.user_database_url(admin_url, role, password)
    url = url.update_query_dict({"options": f"-c role={run.owner}"})
    return url.render_as_string(hide_password=False)


async def drop_run_role(engine: AsyncEngine, run_id: int) -> None:
    role = await _run_role(engine, run_id)
    async with engine.connect() as conn:
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
            {"r": role},
        )
        await roles.execute_composed(
            conn, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role))
        )
        await conn.commit()


async def create_run_token(
    engine: AsyncEngine, run: Run, scopes: tuple[str, ...], lifetime: timedelta
) -> NewToken:
    async with engine.begin() as conn:
        return await create_token(
            conn, run.user_id, note=f"run {run.id}", expires_in=lifetime, scopes=scopes
        )


async def revoke_run_token(engine: AsyncEngine, run: Run, token_id: int | None) -> None:
    if token_id is not None:
        async with engine.begin() as conn:
            await delete_token(conn, run.user_id, token_id)
