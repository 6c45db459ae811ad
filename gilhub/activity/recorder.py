"""What a user's server does with checked activity: store it as the user's role, decide by
the rules (:mod:`.rules`) which cells to ask about, and say so in the reply.

Nothing is stored when the site has not enabled recording or the user switched it off;
the reply then says ``enabled: false`` so that the front end stops sending. While the
database is down, events are held in memory (:class:`Backlog`) and stored with the next
batch that gets through; the front end is answered at once all the same.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.activity import query
from gilhub.activity.errors import Flooded
from gilhub.activity.events import Answer, Event, Execution, NotebookEvent
from gilhub.activity.rules import QUESTION, Ask, continuous_asks, end_asks
from gilhub.activity.site import SiteSettings
from gilhub.contents.edge import DatabaseUnavailableError

#: A transaction on the user's role: ``async with transaction() as (conn, owner)``.
Transaction = Callable[[], AbstractAsyncContextManager[tuple[AsyncConnection, str]]]

OFF: dict[str, Any] = {"enabled": False, "mode": "off", "prompts": []}
FLOOD_WINDOW_SECONDS = 60.0
#: Events held while the database is down: at most this many, for at most this long.
BACKLOG_EVENTS = 2000
BACKLOG_SECONDS = 300.0
#: Unanswered questions about a notebook asked again when it is opened: the newest few.
REASKED_AT_OPEN = 3


class FloodGuard:
    """At most ``limit`` events in any window of a minute."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._taken: deque[tuple[float, int]] = deque()

    def take(self, count: int) -> None:
        now = self.clock()
        while self._taken and self._taken[0][0] <= now - FLOOD_WINDOW_SECONDS:
            self._taken.popleft()
        recent = sum(n for _, n in self._taken)
        if recent + count > self.limit:
            raise Flooded(
                f"More than {self.limit} events in a minute; these {count} were not stored."
            )
        self._taken.append((now, count))


class Backlog:
    """Events that arrived while the database was down, oldest first, each with the time it
    arrived. Beyond :data:`BACKLOG_EVENTS` events or :data:`BACKLOG_SECONDS` the oldest are
    dropped and counted (:attr:`dropped`), and the log says so."""

    def __init__(
        self,
        log: logging.Logger,
        max_events: int = BACKLOG_EVENTS,
        max_age: float = BACKLOG_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.max_events, self.max_age, self.clock = log, max_events, max_age, clock
        self._held: deque[tuple[float, Event]] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, events: Sequence[Event]) -> None:
        now = self.clock()
        self._held.extend((now, event) for event in events)
        self._trim()

    def take(self) -> list[tuple[float, Event]]:
        """Everything held (still fresh), to be stored; :meth:`put_back` if that fails."""
        self._trim()
        taken = list(self._held)
        self._held.clear()
        return taken

    def put_back(self, taken: list[tuple[float, Event]]) -> None:
        self._held.extendleft(reversed(taken))
        self._trim()

    def _trim(self) -> None:
        before = len(self._held)
        oldest_kept = self.clock() - self.max_age
        while self._held and (len(self._held) > self.max_events or self._held[0][0] < oldest_kept):
            self._held.popleft()
        if len(self._held) < before:
            self.dropped += before - len(self._held)
            self.log.warning(
                "Activity: dropped %d events held while the database was down (%d in all)",
                before - len(self._held),
                self.dropped,
            )


class Recorder:
    def __init__(
        self, site: SiteSettings, transaction: Transaction | None, log: logging.Logger
    ) -> None:
        self.site = site
        self.transaction = transaction
        self.flood_guard = FloodGuard(site.events_per_minute)
        self.backlog = Backlog(log)

    @property
    def active(self) -> bool:
        """Is recording enabled on the site, with a database to record in?"""
        return self.site.enabled and self.transaction is not None

    @asynccontextmanager
    async def _as_user(self) -> AsyncIterator[tuple[AsyncConnection, str] | None]:
        """A transaction as the user's role while recording is on for them, else ``None``."""
        if not self.active or self.transaction is None:
            yield None
            return
        async with self.transaction() as (conn, owner):
            yield (conn, owner) if await query.recording_enabled(conn, owner) else None

    def _reply(self, prompts: Sequence[query.Prompt]) -> dict[str, Any]:
        return {
            "enabled": True,
            "mode": self.site.rules.mode,
            "prompts": [
                {
                    "prompt_id": str(prompt.id),
                    "path": prompt.path,
                    "cell_id": prompt.cell_id,
                    "cell_version": prompt.cell_version,
                    "question": QUESTION,
                }
                for prompt in prompts
            ],
        }

    async def record(self, events: Sequence[Event]) -> dict[str, Any]:
        """Store ``events`` (after those held back); the reply carries the prompts the
        rules ask for. While the database is down they are held back, and nobody is asked."""
        if not self.active:
            return OFF
        self.flood_guard.take(len(events))
        held = self.backlog.take()
        batch = [event for _, event in held] + list(events)
        try:
            async with self._as_user() as user:
                if user is None:
                    return OFF
                conn, owner = user
                await query.store_events(conn, owner, batch)
                prompts = await self._unanswered_at_open(conn, owner, batch)
                prompts += await query.create_prompts(
                    conn, owner, await self._asks(conn, owner, batch)
                )
        except DatabaseUnavailableError:
            self.backlog.put_back(held)
            self.backlog.hold(events)
            return self._reply([])
        return self._reply(prompts)

    async def _asks(self, conn: AsyncConnection, owner: str, events: Sequence[Event]) -> list[Ask]:
        rules = self.site.rules
        if rules.mode == "continuous":
            executed = [(e.path, e.cell_id) for e in events if isinstance(e, Execution)]
            return await self._continuous_asks(conn, owner, list(dict.fromkeys(executed)))
        closed = [e.path for e in events if isinstance(e, NotebookEvent) and e.kind == "close"]
        if rules.mode != "end" or not closed:
            return []
        quiet = await query.quiet_paths(conn, owner, closed)
        asks: list[Ask] = []
        for path in dict.fromkeys(closed):
            histories = await query.notebook_histories(conn, owner, path)
            asks += end_asks(histories, rules, quiet_paths=quiet)
        return asks

    async def _unanswered_at_open(
        self, conn: AsyncConnection, owner: str, events: Sequence[Event]
    ) -> list[query.Prompt]:
        """Questions put but never answered, asked again when their notebook is opened: the
        reply to a notebook's close may reach no page (a Notebook 7 tab closes with its
        notebook; a lab tab may close right after), and a page forgets what it was asked."""
        opened = [e.path for e in events if isinstance(e, NotebookEvent) and e.kind == "open"]
        if self.site.rules.mode == "off" or not opened:
            return []
        quiet = await query.quiet_paths(conn, owner, opened)
        paths = [path for path in dict.fromkeys(opened) if path not in quiet]
        return await query.unanswered_prompts(conn, owner, paths, REASKED_AT_OPEN)

    async def _continuous_asks(
        self, conn: AsyncConnection, owner: str, cells: list[tuple[str, str]]
    ) -> list[Ask]:
        """The rules over the cells just run. Most batches ask nothing, and the runs alone
        say so (questions asked before only ever remove candidates: see the rules' tests), so
        what else the rules need is read only when a cell may be worth asking about."""
        if not cells:
            return []
        rules = self.site.rules
        runs_only = await query.cell_histories(conn, owner, cells, with_asked=False)
        if not continuous_asks(runs_only, rules, asked_last_hour=0):
            return []
        return continuous_asks(
            await query.cell_histories(conn, owner, cells),
            rules,
            asked_last_hour=await query.prompts_in_last_hour(conn, owner),
            quiet_paths=await query.quiet_paths(conn, owner, [path for path, _ in cells]),
        )

    async def ask(self, path: str) -> dict[str, Any]:
        """On demand: prompts for the cells of ``path`` that changed most (silenced
        notebooks too: the user asked)."""
        async with self._as_user() as user:
            if user is None:
                return OFF
            conn, owner = user
            asks = end_asks(await query.notebook_histories(conn, owner, path), self.site.rules)
            prompts = await query.create_prompts(conn, owner, asks)
        return self._reply(prompts)

    async def answer(self, answers: Sequence[Answer]) -> int:
        """Store answers to prompts put earlier; :class:`PromptNotFound` stores none."""
        async with self._as_user() as user:
            if user is None:
                return 0
            conn, owner = user
            return await query.record_answers(conn, owner, answers)
