"""Query functions over the run definitions (``schedules`` schema); the caller owns the
transaction. Only the hub calls them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.runs.errors import BadRunRequest, DefinitionNotFound
from gilhub.runs.query import FINISHED, RUN_COLUMNS, Run
from gilhub.runs.schema import definition_runs, definitions, runs


@dataclass(frozen=True)
class Definition:
    id: int
    user_id: int
    name: str
    notebook: str
    source: str
    version: int | None
    parameters: dict[str, Any]
    kernel: str
    schedule: str | None
    timezone: str
    paused: bool
    keep_runs: int
    next_run: datetime | None
    last_error: str | None
    created: datetime

    def as_json(self) -> dict[str, Any]:
        model = asdict(self)
        del model["user_id"]
        for key in ("next_run", "created"):
            model[key] = model[key].isoformat() if model[key] else None
        return model


#: The fields a person sets (the rest the hub keeps).
EDITABLE = ("name", "notebook", "source", "version", "parameters", "kernel", "schedule",
            "timezone", "paused", "keep_runs")  # fmt: skip


async def create_definition(conn: AsyncConnection, user_id: int, **values: Any) -> Definition:
    try:
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    insert(definitions).values(user_id=user_id, **values).returning(*definitions.c)
                )
            ).one()
    except IntegrityError:
        raise BadRunRequest(
            f"You have a run definition named {values['name']!r} already."
        ) from None
    return Definition(*row)


async def get_definition(conn: AsyncConnection, definition_id: int, user_id: int) -> Definition:
    """``user_id``'s definition ``definition_id`` (:class:`DefinitionNotFound` otherwise)."""
    row = (
        await conn.execute(
            select(*definitions.c).where(
                definitions.c.id == definition_id, definitions.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise DefinitionNotFound(f"No run definition {definition_id}.")
    return Definition(*row)


async def list_definitions(conn: AsyncConnection, user_id: int) -> list[Definition]:
    query = select(*definitions.c).where(definitions.c.user_id == user_id)
    return [Definition(*row) for row in await conn.execute(query.order_by(definitions.c.name))]


async def update_definition(
    conn: AsyncConnection, definition_id: int, user_id: int, **values: Any
) -> Definition:
    try:
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    update(definitions)
                    .where(definitions.c.id == definition_id, definitions.c.user_id == user_id)
                    .values(**values)
                    .returning(*definitions.c)
                )
            ).first()
    except IntegrityError:
        raise BadRunRequest(
            f"You have a run definition named {values['name']!r} already."
        ) from None
    if row is None:
        raise DefinitionNotFound(f"No run definition {definition_id}.")
    return Definition(*row)


async def delete_definition(conn: AsyncConnection, definition_id: int, user_id: int) -> None:
    deleted = await conn.execute(
        delete(definitions)
        .where(definitions.c.id == definition_id, definitions.c.user_id == user_id)
        .returning(definitions.c.id)
    )
    if deleted.first() is None:
        raise DefinitionNotFound(f"No run definition {definition_id}.")


async def due_definitions(conn: AsyncConnection) -> list[Definition]:
    """Scheduled, unpaused definitions whose time has come, locked for this transaction
    (another hub on the same database skips them)."""
    query = (
        select(*definitions.c)
        .where(
            definitions.c.schedule.is_not(None),
            definitions.c.paused.is_(False),
            definitions.c.next_run <= func.now(),
        )
        .order_by(definitions.c.next_run)
        .with_for_update(skip_locked=True, key_share=True)  # FOR NO KEY UPDATE: runs link
    )
    return [Definition(*row) for row in await conn.execute(query)]


async def soonest_due(conn: AsyncConnection) -> datetime | None:
    query = select(func.min(definitions.c.next_run)).where(
        definitions.c.schedule.is_not(None), definitions.c.paused.is_(False)
    )
    return (await conn.execute(query)).scalar()


async def link_run(conn: AsyncConnection, definition_id: int, run_id: int) -> None:
    await conn.execute(insert(definition_runs).values(definition_id=definition_id, run_id=run_id))


async def definition_runs_of(
    conn: AsyncConnection, definition_id: int, *, status: str | None = None, limit: int = 100
) -> list[Run]:
    """The definition's runs, newest first (only those in ``status`` if given)."""
    query = (
        select(*RUN_COLUMNS)
        .join(definition_runs, definition_runs.c.run_id == runs.c.id)
        .where(definition_runs.c.definition_id == definition_id)
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(runs.c.status == status)
    return [Run(*row) for row in await conn.execute(query)]


async def prune_runs(conn: AsyncConnection, definition: Definition) -> None:
    """Delete the definition's finished runs beyond its newest ``keep_runs``."""
    kept = (
        select(definition_runs.c.run_id)
        .where(definition_runs.c.definition_id == definition.id)
        .order_by(definition_runs.c.run_id.desc())
        .limit(definition.keep_runs)
    )
    old = (
        select(definition_runs.c.run_id)
        .where(
            definition_runs.c.definition_id == definition.id,
            definition_runs.c.run_id.not_in(kept),
        )
        .scalar_subquery()
    )
    await conn.execute(delete(runs).where(runs.c.id.in_(old), runs.c.status.in_(FINISHED)))
    await conn.execute(
        delete(definition_runs).where(
            definition_runs.c.definition_id == definition.id,
            definition_runs.c.run_id.not_in(select(runs.c.id)),
        )
    )
