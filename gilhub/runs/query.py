"""Plain query functions over the runs tables; the caller owns the transaction.

The hub calls them with its own engine; a run's worker calls the progress ones
(:func:`report_progress`, :func:`add_message`, :func:`finish_run`) as its user's
role, where row-level security limits them to that user's runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.runs.errors import RunNotFound
from gilhub.runs.schema import messages, runs

#: The channel a run's changes are announced on (``pg_notify``, the run's id as payload),
#: by the hub and by the workers alike; the hub's event streams listen to it.
RUNS_CHANNEL = "gilhub_runs"
ACTIVE = ("queued", "running")
FINISHED = ("completed", "failed", "cancelled")
LEVELS = ("INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Run:
    id: int
    user_id: int
    owner: str
    notebook: str
    source: str
    version: int | None
    parameters: dict[str, Any]
    kernel: str
    status: str
    cells_done: int
    cells_total: int
    current_cell: int | None
    created: datetime
    started: datetime | None
    ended: datetime | None
    error_cell: int | None
    error_ename: str | None
    error_evalue: str | None
    error_traceback: str | None
    output_path: str | None
    #: The worker as its spawner recorded it (:meth:`~gilhub.spawner.jobs.Job.state`).
    worker: dict[str, Any] | None
    token_id: int | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def as_json(self) -> dict[str, Any]:
        """The public model (no worker or token details)."""
        model = asdict(self)
        for private in ("owner", "worker", "token_id"):
            del model[private]
        error = {key.removeprefix("error_"): model.pop(key) for key in _ERROR_KEYS}
        model["error"] = error if error["ename"] or error["evalue"] else None
        for key in ("created", "started", "ended"):
            model[key] = model[key].isoformat() if model[key] else None
        return model


_ERROR_KEYS = ("error_cell", "error_ename", "error_evalue", "error_traceback")


@dataclass(frozen=True)
class Message:
    id: int
    time: datetime
    level: str
    text: str
    file: str | None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat()}


#: Every column but the notebook's content (read with :func:`run_content`).
RUN_COLUMNS = tuple(column for column in runs.c if column.name != "content")
_MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.time,
    messages.c.level,
    messages.c.text,
    messages.c.file,
)


async def announce(conn: AsyncConnection, run_id: int) -> None:
    """Tell listeners that run ``run_id`` changed (delivered when the transaction commits)."""
    await conn.execute(
        text("SELECT pg_notify(:channel, :run_id)"),
        {"channel": RUNS_CHANNEL, "run_id": str(run_id)},
    )


async def create_run(
    conn: AsyncConnection,
    *,
    user_id: int,
    owner: str,
    notebook: str,
    source: str,
    version: int | None,
    parameters: dict[str, Any],
    kernel: str,
    content: bytes,
) -> Run:
    statement = (
        insert(runs)
        .values(
            user_id=user_id,
            owner=owner,
            notebook=notebook,
            source=source,
            version=version,
            parameters=parameters,
            kernel=kernel,
            content=content,
        )
        .returning(*RUN_COLUMNS)
    )
    run = Run(*(await conn.execute(statement)).one())
    await announce(conn, run.id)
    return run


async def get_run(conn: AsyncConnection, run_id: int) -> Run:
    row = (await conn.execute(select(*RUN_COLUMNS).where(runs.c.id == run_id))).first()
    if row is None:
        raise RunNotFound(f"No run {run_id}.")
    return Run(*row)


async def run_content(conn: AsyncConnection, run_id: int) -> bytes:
    """The notebook the run executes, as it was when the run was asked for."""
    found = (await conn.execute(select(runs.c.content).where(runs.c.id == run_id))).first()
    if found is None:
        raise RunNotFound(f"No run {run_id}.")
    return found.content


async def list_runs(conn: AsyncConnection, user_id: int | None, limit: int) -> list[Run]:
    """The newest runs first: ``user_id``'s, or everyone's when ``None``."""
    query = select(*RUN_COLUMNS).order_by(runs.c.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(runs.c.user_id == user_id)
    return [Run(*row) for row in await conn.execute(query)]


async def runs_with_status(conn: AsyncConnection, status: str) -> list[Run]:
    """Every run in ``status``, oldest first (the queue's order)."""
    query = select(*RUN_COLUMNS).where(runs.c.status == status).order_by(runs.c.id)
    return [Run(*row) for row in await conn.execute(query)]


async def active_runs_of(conn: AsyncConnection, user_id: int) -> list[Run]:
    """``user_id``'s queued and running runs."""
    query = select(*RUN_COLUMNS).where(runs.c.user_id == user_id, runs.c.status.in_(ACTIVE))
    return [Run(*row) for row in await conn.execute(query)]


async def queue_position(conn: AsyncConnection, run: Run) -> int | None:
    """1 for the next queued run to start; ``None`` once it is not queued."""
    if run.status != "queued":
        return None
    ahead = select(func.count()).where(runs.c.status == "queued", runs.c.id < run.id)
    return (await conn.execute(ahead)).scalar_one() + 1


async def claim_run(conn: AsyncConnection, run_id: int, token_id: int) -> Run | None:
    """Mark a queued run running (before its worker starts, so that the worker finds it
    running); ``None`` if it is no longer queued (cancelled, or claimed by another hub)."""
    claimed = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == "queued")
        .values(status="running", started=func.now(), token_id=token_id)
        .returning(*RUN_COLUMNS)
    )
    row = claimed.first()
    if row is None:
        return None
    await announce(conn, run_id)
    return Run(*row)


async def record_worker(conn: AsyncConnection, run_id: int, worker: dict[str, Any]) -> None:
    """Remember the run's worker (its job's state), to find it again after a hub restart."""
    await conn.execute(update(runs).where(runs.c.id == run_id).values(worker=worker))


async def report_progress(conn: AsyncConnection, run_id: int, **values: Any) -> None:
    """Set progress columns (``cells_done``, ``cells_total``, ``current_cell``) of a running run."""
    await conn.execute(
        update(runs).where(runs.c.id == run_id, runs.c.status == "running").values(**values)
    )
    await announce(conn, run_id)


async def finish_run(conn: AsyncConnection, run_id: int, status: str, **values: Any) -> bool:
    """End an active run as ``status`` (with error or output columns); ``False`` if it had
    ended already (e.g. cancelled while its worker was finishing)."""
    assert status in FINISHED
    ended = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status.in_(ACTIVE))
        .values(status=status, ended=func.now(), current_cell=None, **values)
        .returning(runs.c.id)
    )
    if ended.first() is None:
        return False
    await announce(conn, run_id)
    return True


async def record_output(conn: AsyncConnection, run_id: int, path: str) -> None:
    """Where the executed notebook was saved (also for a run cancelled meanwhile)."""
    await conn.execute(update(runs).where(runs.c.id == run_id).values(output_path=path))
    await announce(conn, run_id)


async def add_message(
    conn: AsyncConnection, run_id: int, owner: str, level: str, text: str, file: str | None = None
) -> None:
    assert level in LEVELS
    await conn.execute(
        insert(messages).values(run_id=run_id, owner=owner, level=level, text=text, file=file)
    )
    await announce(conn, run_id)


async def messages_after(conn: AsyncConnection, run_id: int, after_id: int = 0) -> list[Message]:
    query = (
        select(*_MESSAGE_COLUMNS)
        .where(messages.c.run_id == run_id, messages.c.id > after_id)
        .order_by(messages.c.id)
    )
    return [Message(*row) for row in await conn.execute(query)]
