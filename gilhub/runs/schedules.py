"""Run definitions and their schedules (``hub.runs.definitions``).

A definition keeps a notebook, its parameters and kernel under a name of its
owner's, to run on demand or on a cron schedule (five fields, read by croniter
in the definition's time zone, UTC by default). The hub's scheduler
(:meth:`RunDefinitions.schedule_forever`) queues each due definition's run under
its owner, as if they had asked for it, then sets the next time *from now*: a hub
that was down through several due times queues one run when it is back, not one
per missed time. Each definition keeps its newest ``keep_runs`` runs; older
finished ones are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.runs import definitions as store
from gilhub.runs.definitions import EDITABLE, Definition
from gilhub.runs.errors import BadRunRequest, RunError, RunNotFound
from gilhub.runs.query import Run
from gilhub.users import User, get_user_by_id

if TYPE_CHECKING:
    from gilhub.runs.service import Runs

MAX_NAME = 100
MAX_KEEP_RUNS = 1000
#: The scheduler looks at least this often (a definition changed by another hub).
_IDLE_SECONDS = 60.0


def checked_schedule(schedule: Any) -> str | None:
    """A five-field cron expression (or ``None``/empty: no schedule); BadRunRequest if not."""
    if schedule is None or schedule == "":
        return None
    if not isinstance(schedule, str) or len(schedule) > 200:
        raise BadRunRequest("schedule must be a cron expression such as '0 6 * * 1-5'.")
    schedule = " ".join(schedule.split())
    if len(schedule.split(" ")) != 5 or not croniter.is_valid(schedule):
        raise BadRunRequest(
            f"{schedule!r} is not a cron expression of five fields (minute hour day-of-month "
            "month day-of-week), e.g. '0 6 * * 1-5'."
        )
    return schedule


def checked_timezone(name: Any) -> str:
    """An IANA time zone name (``Europe/Berlin``); BadRunRequest if not one known here."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise BadRunRequest("timezone must be an IANA time zone name such as 'Europe/Berlin'.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRunRequest(f"Unknown time zone {name!r}.") from None
    return name


def next_time(
    schedule: str | None, timezone_name: str, paused: bool, after: datetime
) -> datetime | None:
    """When ``schedule`` (read in ``timezone_name``) is due next after ``after``."""
    if schedule is None or paused:
        return None
    local = after.astimezone(ZoneInfo(timezone_name))
    return croniter(schedule, local).get_next(datetime)


class RunDefinitions:
    """Create, change, delete and run definitions; queue the scheduled ones when due."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.changed = asyncio.Event()

    @property
    def engine(self) -> AsyncEngine:
        return self.runs.engine

    async def _checked(
        self, user: User, body: dict[str, Any], current: Definition | None
    ) -> dict[str, Any]:
        """The fields of ``body`` checked, merged over ``current`` (for a change)."""
        unknown = sorted(set(body) - set(EDITABLE))
        if unknown:
            raise BadRunRequest(f"Unknown fields: {', '.join(unknown)}.")
        merged = {key: getattr(current, key) for key in EDITABLE} if current else {}
        merged.update(body)
        name = merged.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise BadRunRequest(f"name must be a text of 1 to {MAX_NAME} characters.")
        if any(ord(character) < 32 for character in name):
            raise BadRunRequest("name must not contain control characters.")
        keep_runs = merged.get("keep_runs", 10)
        if not isinstance(keep_runs, int) or isinstance(keep_runs, bool):
            raise BadRunRequest(f"keep_runs must be a whole number from 1 to {MAX_KEEP_RUNS}.")
        if not 1 <= keep_runs <= MAX_KEEP_RUNS:
            raise BadRunRequest(f"keep_runs must be a whole number from 1 to {MAX_KEEP_RUNS}.")
        paused = merged.get("paused", False)
        if not isinstance(paused, bool):
            raise BadRunRequest("paused must be true or false.")
        request = await self.runs.checked_request(
            user,
            notebook=merged.get("notebook"),
            source=merged.get("source", "storage"),
            version=merged.get("version"),
            parameters=merged.get("parameters"),
            kernel=merged.get("kernel"),
        )
        schedule = checked_schedule(merged.get("schedule"))
        zone = checked_timezone(merged.get("timezone", "UTC"))
        return {
            "name": name.strip(),
            **request.fields,
            "schedule": schedule,
            "timezone": zone,
            "paused": paused,
            "keep_runs": keep_runs,
            "next_run": next_time(schedule, zone, paused, datetime.now(timezone.utc)),
        }

    async def create(self, user: User, body: dict[str, Any]) -> Definition:
        values = await self._checked(user, body, None)
        async with self.engine.begin() as conn:
            definition = await store.create_definition(conn, user.id, **values)
        self.changed.set()
        return definition

    async def update(self, user: User, definition_id: int, body: dict[str, Any]) -> Definition:
        current = await self.get(user, definition_id)
        values = await self._checked(user, body, current)
        async with self.engine.begin() as conn:
            definition = await store.update_definition(conn, definition_id, user.id, **values)
        self.changed.set()
        return definition

    async def delete(self, user: User, definition_id: int) -> None:
        async with self.engine.begin() as conn:
            await store.delete_definition(conn, definition_id, user.id)

    async def get(self, user: User, definition_id: int) -> Definition:
        async with self.engine.connect() as conn:
            return await store.get_definition(conn, definition_id, user.id)

    async def list(self, user: User) -> list[Definition]:
        async with self.engine.connect() as conn:
            return await store.list_definitions(conn, user.id)

    async def runs_of(self, user: User, definition_id: int, *, limit: int) -> list[Run]:
        async with self.engine.connect() as conn:
            await store.get_definition(conn, definition_id, user.id)
            return await store.definition_runs_of(conn, definition_id, limit=limit)

    async def latest(self, user: User, definition_id: int) -> Run:
        """The newest completed run of the definition (the stable ``latest`` URL)."""
        async with self.engine.connect() as conn:
            await store.get_definition(conn, definition_id, user.id)
            found = await store.definition_runs_of(conn, definition_id, status="completed", limit=1)
        if not found:
            raise RunNotFound(f"Run definition {definition_id} has no completed run yet.")
        return found[0]

    async def run_now(self, user: User, definition_id: int) -> Run:
        return await self._queue(user, await self.get(user, definition_id))

    async def _queue(self, user: User, definition: Definition) -> Run:
        run = await self.runs.submit(
            user,
            notebook=definition.notebook,
            source=definition.source,
            version=definition.version,
            parameters=definition.parameters,
            kernel=definition.kernel,
            definition_id=definition.id,
        )
        async with self.engine.begin() as conn:
            await store.prune_runs(conn, definition)
        return run

    # -- the scheduler ---------------------------------------------------------------

    async def queue_due(self) -> None:
        """Queue one run of every due definition and set its next time from now."""
        async with self.engine.begin() as conn:
            for definition in await store.due_definitions(conn):
                error = await self._queue_scheduled(definition)
                now = datetime.now(timezone.utc)
                await store.update_definition(
                    conn,
                    definition.id,
                    definition.user_id,
                    next_run=next_time(
                        definition.schedule, definition.timezone, definition.paused, now
                    ),
                    last_error=error,
                )

    async def _queue_scheduled(self, definition: Definition) -> str | None:
        """Queue the definition's run; why it could not be queued, if it could not."""
        async with self.engine.connect() as conn:
            user = await get_user_by_id(conn, definition.user_id)
        if user is None:
            return "The definition's owner is gone."
        try:
            await self._queue(user, definition)
        except RunError as error:
            self.runs.log.warning("Scheduled run of definition %s: %s", definition.id, error)
            return error.message
        return None

    async def schedule_forever(self) -> None:
        """Queue due runs, then sleep until the next is due (or a definition changes)."""
        while True:
            try:
                await self.queue_due()
                async with self.engine.connect() as conn:
                    soonest = await store.soonest_due(conn)
            except Exception:
                self.runs.log.exception("Queueing scheduled runs failed")
                soonest = None
            wait = _IDLE_SECONDS
            if soonest is not None:
                wait = min(wait, (soonest - datetime.now(timezone.utc)).total_seconds())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(wait, 0.0))
            self.changed.clear()
