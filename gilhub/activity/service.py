"""The activity service (``hub.activity``): the site's settings, each user's switch, the
narratives, deletion, the counts administrators see, and the retention purge.

Recording itself happens in each user's server (:mod:`gilhub.serverext.activity`), as the
user's own role; the hub hands the site's settings to every server it starts
(:meth:`Activity.server_environment`, :mod:`.site`) and reads with its own engine, naming
the user's role.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from traitlets import Bool, Enum, Float, Integer
from traitlets.config import LoggingConfigurable

from gilhub.activity import narrative, query
from gilhub.activity.errors import NotebookNotRecorded
from gilhub.activity.events import notebook_path
from gilhub.activity.rules import MODES, Rules
from gilhub.activity.site import SiteSettings
from gilhub.users import User, get_user_by_name

if TYPE_CHECKING:
    from gilhub.app import GilHub

#: Seconds between two purges of old records.
PURGE_INTERVAL = 3600.0


class Activity(LoggingConfigurable):
    """The activity narrative (issue 13): cell executions recorded per user, a rare
    "what are you trying to do?", and the story of each notebook. Off until enabled."""

    enabled = Bool(
        False,
        config=True,
        help="Record users' cell executions and notebook events (each user can still switch"
        " it off for themselves). User servers started before a change keep the old setting.",
    )
    mode = Enum(
        MODES,
        default_value="continuous",
        config=True,
        help="When to ask users what they are trying to do: 'continuous' (while they work),"
        " 'end' (when a notebook is closed, or on demand) or 'off' (record, never ask).",
    )
    changes_before_asking = Integer(
        3,
        min=1,
        config=True,
        help="Continuous mode: ask about a cell run again after its source changed this"
        " many times since it was last asked about.",
    )
    prompts_per_hour = Integer(
        4, min=0, config=True, help="Continuous mode: at most this many questions an hour."
    )
    cells_at_end = Integer(
        3, min=1, config=True, help="End mode: ask about this many cells that changed most."
    )
    events_per_minute = Integer(
        2000, min=1, config=True, help="Events a user's server accepts per minute (429 beyond)."
    )
    retention_days = Float(
        180.0,
        min=0.0,
        config=True,
        help="Days a record is kept; older rows are purged hourly (0: kept until deleted).",
    )
    session_gap_minutes = Float(
        30.0,
        min=1.0,
        config=True,
        help="A pause longer than this (minutes) starts a new working session in narratives.",
    )

    def __init__(self, hub: GilHub, **kwargs: Any) -> None:
        super().__init__(parent=hub, **kwargs)
        self.hub = hub
        self._purger: asyncio.Task[None] | None = None

    @property
    def engine(self) -> AsyncEngine:
        assert self.hub.db is not None
        return self.hub.db

    @property
    def site(self) -> SiteSettings:
        rules = Rules(
            mode=self.mode if self.enabled else "off",
            changes_before_asking=self.changes_before_asking,
            prompts_per_hour=self.prompts_per_hour,
            cells_at_end=self.cells_at_end,
        )
        return SiteSettings(self.enabled, rules, self.events_per_minute)

    def server_environment(self) -> dict[str, str]:
        """What a user's server is started with (its environment)."""
        return self.site.as_environment()

    # -- the user's switch ------------------------------------------------------------

    async def settings(self, user: User) -> dict[str, Any]:
        enabled = True
        if user.db_role:
            async with self.engine.connect() as conn:
                enabled = await query.recording_enabled(conn, user.db_role)
        return {"site_enabled": self.enabled, "mode": self.site.rules.mode, "enabled": enabled}

    async def set_enabled(self, user: User, enabled: bool) -> dict[str, Any]:
        if user.db_role:
            async with self.engine.begin() as conn:
                await query.set_recording_enabled(conn, user.db_role, enabled)
        return await self.settings(user)

    # -- the record -------------------------------------------------------------------

    async def notebooks(self, user: User) -> list[query.NotebookSummary]:
        if not user.db_role:
            return []
        async with self.engine.connect() as conn:
            return await query.notebooks(conn, user.db_role)

    async def narrative(self, asker: User, path: Any, of: Any = None) -> dict[str, Any]:
        """The story of the asker's notebook ``path``, or of user ``of``'s if they share it
        and the asker is an administrator (:class:`NotebookNotRecorded` otherwise: whether
        another user's notebook exists is not told)."""
        path = notebook_path(path)
        async with self.engine.connect() as conn:
            owner = await self._readable_owner(conn, asker, path, of)
            record = await query.notebook_record(conn, owner, path) if owner else None
        if record is None or not (record.versions or record.events):
            raise NotebookNotRecorded(f"Nothing is recorded about {path!r}.")
        gap = timedelta(minutes=self.session_gap_minutes)
        return await asyncio.to_thread(narrative.narrative, record, gap)

    @staticmethod
    async def _readable_owner(conn: AsyncConnection, asker: User, path: str, of: Any) -> str | None:
        if of is None or of == asker.name:
            return asker.db_role
        if not asker.is_admin or not isinstance(of, str):
            return None
        user = await get_user_by_name(conn, of)
        if user is None or not user.db_role:
            return None
        return user.db_role if path in await query.shared_paths(conn, user.db_role) else None

    async def export(self, asker: User, path: Any, format: str, of: Any = None) -> str:
        """The narrative as ``markdown`` or ``notebook`` (JSON text)."""
        story = await self.narrative(asker, path, of)
        render = narrative.markdown if format == "markdown" else narrative.notebook
        return await asyncio.to_thread(render, story)

    async def shared_paths(self, user: User) -> list[str]:
        if not user.db_role:
            return []
        async with self.engine.connect() as conn:
            return await query.shared_paths(conn, user.db_role)

    async def share(self, user: User, path: Any, shared: bool) -> dict[str, Any]:
        """Share the story of ``path`` with administrators, or stop sharing it."""
        path = notebook_path(path)
        if shared:
            await self.narrative(user, path)  # only what is recorded can be shared
        if user.db_role:
            async with self.engine.begin() as conn:
                await query.set_shared(conn, user.db_role, path, shared)
        return {"path": path, "shared": shared}

    async def delete(self, user: User, path: Any = None) -> None:
        """Forget ``user``'s record of ``path``, or all of it (their choices stay)."""
        if path is not None:
            path = notebook_path(path)
        if not user.db_role:
            return
        async with self.engine.begin() as conn:
            if path is None:
                await query.delete_record(conn, user.db_role)
            elif not await query.delete_notebook(conn, user.db_role, path):
                raise NotebookNotRecorded(f"Nothing is recorded about {path!r}.")

    async def counts(self) -> list[query.OwnerCounts]:
        async with self.engine.connect() as conn:
            return await query.counts(conn)

    # -- retention --------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than :attr:`retention_days`; how many went."""
        if not self.retention_days:
            return 0
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days)
        async with self.engine.begin() as conn:
            return await query.purge_older_than(conn, cutoff)

    async def _purge_periodically(self) -> None:
        while True:
            try:
                removed = await self.purge()
                if removed:
                    self.log.info(
                        "Activity: purged %d rows older than %g days", removed, self.retention_days
                    )
            except SQLAlchemyError as error:
                self.hub.report_database_error(error, "Purging old activity failed (will retry)")
            await asyncio.sleep(PURGE_INTERVAL)

    def start_purging(self) -> None:
        self._purger = asyncio.create_task(self._purge_periodically())

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            self._purger = None


async def start(hub: GilHub) -> Activity:
    """The hub's activity service (the part's start hook); purges old rows hourly."""
    service = Activity(hub)
    service.start_purging()
    return service


async def stop(hub: GilHub) -> None:
    if hub.activity is not None:
        await hub.activity.stop()
