"""Plain query functions over the activity tables; the caller owns the transaction.

A user's server calls the recording ones as the user's own role (row-level security
confines it to its rows; ``owner`` is that role). The hub calls the reading, deleting and
purging ones with its superuser engine, naming the user's role as ``owner``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, Table, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.activity.errors import PromptNotFound
from gilhub.activity.events import Answer, Event, Execution
from gilhub.activity.rules import Ask, CellHistory, Run
from gilhub.activity.schema import (
    OWNED_TABLES,
    RECORD_TABLES,
    answers,
    cell_versions,
    executions,
    notebook_events,
    prompts,
    quiet_notebooks,
    settings,
    shared_notebooks,
)
from gilhub.schema import users


@dataclass(frozen=True)
class Prompt:
    id: uuid.UUID
    path: str
    cell_id: str
    cell_version: str


@dataclass(frozen=True)
class NotebookRecord:
    """Everything recorded about one notebook, for its narrative."""

    path: str
    versions: Sequence[Row]  # cell_id, cell_version, source, source_truncated, first_seen
    executions: Sequence[Row]  # oldest first
    events: Sequence[Row]  # kind, time
    answers: Sequence[Row]  # cell_id, cell_version, answer, time


@dataclass(frozen=True)
class NotebookSummary:
    path: str
    executions: int
    last: datetime
    shared: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "executions": self.executions,
            "last": self.last.isoformat(),
            "shared": self.shared,
        }


@dataclass(frozen=True)
class OwnerCounts:
    user: str
    notebooks: int
    executions: int
    answers: int
    #: the notebooks whose story the user shares with administrators
    shared: list[str]


# -- the user's switch and silenced notebooks ------------------------------------------


async def recording_enabled(conn: AsyncConnection, owner: str) -> bool:
    """The user's own switch (on unless they turned it off)."""
    found = await conn.execute(select(settings.c.enabled).where(settings.c.owner == owner))
    enabled = found.scalar_one_or_none()
    return True if enabled is None else enabled


async def set_recording_enabled(conn: AsyncConnection, owner: str, enabled: bool) -> None:
    statement = pg_insert(settings).values(owner=owner, enabled=enabled)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[settings.c.owner], set_={"enabled": enabled, "changed": func.now()}
        )
    )


async def quiet_paths(conn: AsyncConnection, owner: str, paths: Iterable[str]) -> frozenset[str]:
    """Which of ``paths`` the user said not to be asked about."""
    found = await conn.execute(
        select(quiet_notebooks.c.path).where(
            quiet_notebooks.c.owner == owner, quiet_notebooks.c.path.in_(set(paths))
        )
    )
    return frozenset(found.scalars())


# -- recording (a user's server, as the user's role) ----------------------------------


async def store_events(conn: AsyncConnection, owner: str, events: Sequence[Event]) -> None:
    """Store a checked batch: new cell versions, executions, notebook events."""
    runs = [event for event in events if isinstance(event, Execution)]
    if runs:
        new_versions = {
            (run.path, run.cell_id, run.cell_version): {
                "owner": owner,
                "path": run.path,
                "cell_id": run.cell_id,
                "cell_version": run.cell_version,
                "source": run.source,
                "source_truncated": run.source_truncated,
            }
            for run in runs
        }
        await conn.execute(
            pg_insert(cell_versions).on_conflict_do_nothing(), list(new_versions.values())
        )
        await conn.execute(
            insert(executions),
            [
                {
                    "owner": owner,
                    "path": run.path,
                    "cell_id": run.cell_id,
                    "cell_version": run.cell_version,
                    "execution_count": run.execution_count,
                    "started": run.started,
                    "ended": run.ended,
                    "status": run.status,
                    "ename": run.ename,
                    "evalue": run.evalue,
                    "output_hash": run.output_hash,
                }
                for run in runs
            ],
        )
    notebook = [event for event in events if not isinstance(event, Execution)]
    if notebook:
        await conn.execute(
            insert(notebook_events),
            [{"owner": owner, "path": e.path, "kind": e.kind, "time": e.time} for e in notebook],
        )


async def cell_histories(
    conn: AsyncConnection,
    owner: str,
    cells: Sequence[tuple[str, str]],
    *,
    with_asked: bool = True,
) -> list[CellHistory]:
    """The runs and (unless ``with_asked`` is false) the versions asked about of each
    ``(path, cell_id)``, in the order given."""
    if not cells:
        return []
    key = tuple_(executions.c.path, executions.c.cell_id)
    runs = await conn.execute(
        select(
            executions.c.path, executions.c.cell_id, executions.c.cell_version, executions.c.status
        )
        .where(executions.c.owner == owner, key.in_(cells))
        .order_by(executions.c.started, executions.c.id)
    )
    asked: Iterable[Row] = []
    if with_asked:
        asked = await conn.execute(
            select(prompts.c.path, prompts.c.cell_id, prompts.c.cell_version).where(
                prompts.c.owner == owner, tuple_(prompts.c.path, prompts.c.cell_id).in_(cells)
            )
        )
    return _histories(cells, runs, asked)


async def notebook_histories(conn: AsyncConnection, owner: str, path: str) -> list[CellHistory]:
    """Every recorded cell of ``path``, in the order of their first run."""
    runs = (
        await conn.execute(
            select(
                executions.c.path,
                executions.c.cell_id,
                executions.c.cell_version,
                executions.c.status,
            )
            .where(executions.c.owner == owner, executions.c.path == path)
            .order_by(executions.c.started, executions.c.id)
        )
    ).all()
    asked = await conn.execute(
        select(prompts.c.path, prompts.c.cell_id, prompts.c.cell_version).where(
            prompts.c.owner == owner, prompts.c.path == path
        )
    )
    cells = list(dict.fromkeys((row.path, row.cell_id) for row in runs))
    return _histories(cells, runs, asked)


def _histories(
    cells: Sequence[tuple[str, str]], runs: Iterable[Row], asked: Iterable[Row]
) -> list[CellHistory]:
    runs_of: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for row in runs:
        runs_of[row.path, row.cell_id].append(Run(row.cell_version, row.status))
    asked_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in asked:
        asked_of[row.path, row.cell_id].add(row.cell_version)
    return [
        CellHistory(
            path, cell_id, tuple(runs_of[path, cell_id]), frozenset(asked_of[path, cell_id])
        )
        for path, cell_id in cells
    ]


async def prompts_in_last_hour(conn: AsyncConnection, owner: str) -> int:
    found = await conn.execute(
        select(func.count())
        .select_from(prompts)
        .where(prompts.c.owner == owner, prompts.c.asked > func.now() - timedelta(hours=1))
    )
    return found.scalar_one()


async def unanswered_prompts(
    conn: AsyncConnection, owner: str, paths: Sequence[str], limit: int
) -> list[Prompt]:
    """The newest ``limit`` prompts about each of ``paths`` that were put but never
    answered, skipped or silenced, oldest first (those put together: by path and cell)."""
    newest = (
        select(
            prompts.c.id,
            prompts.c.path,
            prompts.c.cell_id,
            prompts.c.cell_version,
            prompts.c.asked,
            func.row_number()
            .over(partition_by=prompts.c.path, order_by=prompts.c.asked.desc())
            .label("newness"),
        )
        .where(prompts.c.owner == owner, prompts.c.path.in_(paths), prompts.c.closed.is_(None))
        .subquery()
    )
    found = await conn.execute(
        select(newest.c.id, newest.c.path, newest.c.cell_id, newest.c.cell_version)
        .where(newest.c.newness <= limit)
        .order_by(newest.c.asked, newest.c.path, newest.c.cell_id)
    )
    return [Prompt(row.id, row.path, row.cell_id, row.cell_version) for row in found]


async def create_prompts(conn: AsyncConnection, owner: str, asks: Sequence[Ask]) -> list[Prompt]:
    """Record the prompts about to be put (a version asked about already is skipped)."""
    created = []
    for ask in asks:
        statement = (
            pg_insert(prompts)
            .values(
                owner=owner,
                path=ask.path,
                cell_id=ask.cell_id,
                cell_version=ask.cell_version,
                reason=ask.reason,
            )
            .on_conflict_do_nothing()
            .returning(prompts.c.id)
        )
        prompt_id = (await conn.execute(statement)).scalar_one_or_none()
        if prompt_id is not None:
            created.append(Prompt(prompt_id, ask.path, ask.cell_id, ask.cell_version))
    return created


async def record_answers(conn: AsyncConnection, owner: str, given: Sequence[Answer]) -> int:
    """Close each answered prompt (and store the answer, or silence its notebook).

    Raises :class:`PromptNotFound` for an id that is not one of ``owner``'s prompts; the
    caller's transaction then stores none of the batch.
    """
    for answer in given:
        closed = await conn.execute(
            update(prompts)
            .where(prompts.c.owner == owner, prompts.c.id == answer.prompt_id)
            .values(outcome=answer.outcome, closed=func.now())
            .returning(prompts.c.path, prompts.c.cell_id, prompts.c.cell_version)
        )
        prompt = closed.first()
        if prompt is None:
            raise PromptNotFound(f"No prompt {answer.prompt_id}.")
        if answer.outcome == "answered":
            await conn.execute(
                insert(answers).values(
                    owner=owner,
                    prompt_id=answer.prompt_id,
                    path=prompt.path,
                    cell_id=prompt.cell_id,
                    cell_version=prompt.cell_version,
                    answer=answer.text,
                )
            )
        elif answer.outcome == "dont_ask":
            await conn.execute(
                pg_insert(quiet_notebooks)
                .values(owner=owner, path=prompt.path)
                .on_conflict_do_nothing()
            )
    return len(given)


# -- reading (the hub) ------------------------------------------------------------------


async def notebook_record(conn: AsyncConnection, owner: str, path: str) -> NotebookRecord:
    async def rows(table: Table, columns: str, order: str) -> Sequence[Row]:
        statement = (
            select(*(table.c[name] for name in columns.split()))
            .where(table.c.owner == owner, table.c.path == path)
            .order_by(*(table.c[name] for name in order.split()))
        )
        return (await conn.execute(statement)).all()

    return NotebookRecord(
        path,
        versions=await rows(
            cell_versions, "cell_id cell_version source source_truncated first_seen", "first_seen"
        ),
        executions=await rows(
            executions,
            "cell_id cell_version execution_count started ended status ename evalue",
            "started id",
        ),
        events=await rows(notebook_events, "kind time", "time id"),
        answers=await rows(answers, "cell_id cell_version answer time", "time id"),
    )


async def notebooks(conn: AsyncConnection, owner: str) -> list[NotebookSummary]:
    """The notebooks with recorded executions or events, the latest used first."""
    runs = select(
        executions.c.path, literal(1).label("execution"), executions.c.started.label("time")
    ).where(executions.c.owner == owner)
    opened = select(
        notebook_events.c.path, literal(0).label("execution"), notebook_events.c.time
    ).where(notebook_events.c.owner == owner)
    both = runs.union_all(opened).subquery()
    found = await conn.execute(
        select(both.c.path, func.sum(both.c.execution), func.max(both.c.time))
        .group_by(both.c.path)
        .order_by(func.max(both.c.time).desc(), both.c.path)
    )
    shared = set(await shared_paths(conn, owner))
    return [NotebookSummary(path, int(count), last, path in shared) for path, count, last in found]


# -- sharing with administrators -------------------------------------------------------


async def set_shared(conn: AsyncConnection, owner: str, path: str, shared: bool) -> None:
    if shared:
        await conn.execute(
            pg_insert(shared_notebooks).values(owner=owner, path=path).on_conflict_do_nothing()
        )
    else:
        await conn.execute(
            delete(shared_notebooks).where(
                shared_notebooks.c.owner == owner, shared_notebooks.c.path == path
            )
        )


async def shared_paths(conn: AsyncConnection, owner: str) -> list[str]:
    found = await conn.execute(
        select(shared_notebooks.c.path)
        .where(shared_notebooks.c.owner == owner)
        .order_by(shared_notebooks.c.path)
    )
    return list(found.scalars())


async def counts(conn: AsyncConnection) -> list[OwnerCounts]:
    """Per user: how many notebooks, executions and answers are recorded (no content)."""

    def per_owner(table, *, distinct_path: bool = False):  # type: ignore[no-untyped-def]
        counted = func.count(table.c.path.distinct()) if distinct_path else func.count()
        return select(table.c.owner, counted.label("n")).group_by(table.c.owner).subquery()

    notebooks_of = per_owner(executions, distinct_path=True)
    runs_of = per_owner(executions)
    answers_of = per_owner(answers)
    found = await conn.execute(
        select(
            users.c.name,
            users.c.db_role,
            func.coalesce(notebooks_of.c.n, 0),
            func.coalesce(runs_of.c.n, 0),
            func.coalesce(answers_of.c.n, 0),
        )
        .select_from(users)
        .outerjoin(notebooks_of, notebooks_of.c.owner == users.c.db_role)
        .outerjoin(runs_of, runs_of.c.owner == users.c.db_role)
        .outerjoin(answers_of, answers_of.c.owner == users.c.db_role)
        .order_by(users.c.name)
    )
    shares = await conn.execute(select(shared_notebooks.c.owner, shared_notebooks.c.path))
    shared_of: dict[str, list[str]] = defaultdict(list)
    for owner, path in shares:
        shared_of[owner].append(path)
    return [
        OwnerCounts(name, notebooks, runs, given, sorted(shared_of.get(role, [])))
        for name, role, notebooks, runs, given in found
    ]


# -- deleting ---------------------------------------------------------------------------


async def delete_notebook(conn: AsyncConnection, owner: str, path: str) -> bool:
    """Forget everything recorded about ``path``; False if there was nothing."""
    removed = 0
    for table in (cell_versions, notebook_events, shared_notebooks):
        result = await conn.execute(
            delete(table).where(table.c.owner == owner, table.c.path == path)
        )
        removed += result.rowcount
    return removed > 0


async def delete_record(conn: AsyncConnection, owner: str) -> None:
    """Forget everything recorded for ``owner`` (their choices stay: the switch, silenced
    notebooks)."""
    await _delete_rows(conn, owner, RECORD_TABLES)


async def delete_owner(conn: AsyncConnection, owner: str) -> None:
    """Forget everything of ``owner``, choices included (the user's removal)."""
    await _delete_rows(conn, owner, OWNED_TABLES)


async def _delete_rows(conn: AsyncConnection, owner: str, tables: Sequence[Table]) -> None:
    for table in tables:
        await conn.execute(delete(table).where(table.c.owner == owner))


async def change_owner(conn: AsyncConnection, owner: str, new_owner: str) -> None:
    """Give ``owner``'s record to ``new_owner`` (a user's rename; the foreign keys are
    deferred, so the order of the tables is free)."""
    for table in OWNED_TABLES:
        await conn.execute(update(table).where(table.c.owner == owner).values(owner=new_owner))


async def purge_older_than(conn: AsyncConnection, cutoff: datetime) -> int:
    """Delete every user's rows recorded before ``cutoff`` (retention); how many went.

    A cell version goes once no execution of it is left and it was first seen before the
    cutoff (its prompts and answers go with it).
    """
    removed = 0
    for table, column in (
        (executions, executions.c.received),
        (notebook_events, notebook_events.c.received),
        (answers, answers.c.time),
        (prompts, prompts.c.asked),
    ):
        removed += (await conn.execute(delete(table).where(column < cutoff))).rowcount
    unused = ~(
        select(executions.c.id)
        .where(
            executions.c.owner == cell_versions.c.owner,
            executions.c.path == cell_versions.c.path,
            executions.c.cell_id == cell_versions.c.cell_id,
            executions.c.cell_version == cell_versions.c.cell_version,
        )
        .exists()
    )
    stale = delete(cell_versions).where(cell_versions.c.first_seen < cutoff, unused)
    removed += (await conn.execute(stale)).rowcount
    return removed
