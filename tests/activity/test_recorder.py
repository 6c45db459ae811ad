"""The recorder of a user's server, with real PostgreSQL and a real contents manager as the
user's role: the end mode asks when a notebook is closed; while the database is down
(a contents manager pointed at a port where nothing listens) the server answers at once and
holds the events back, stores them with the next batch that gets through, or drops (and
counts) them when too many or too old; a flood of events is refused."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.activity import query
from gilhub.activity.errors import Flooded
from gilhub.activity.events import Answer, parse_events
from gilhub.activity.recorder import Backlog, FloodGuard, Recorder
from gilhub.activity.rules import Rules
from gilhub.activity.schema import executions
from gilhub.activity.site import SiteSettings
from gilhub.contents import roles
from gilhub.contents.manager import PostgresContentsManager

SITE = SiteSettings(enabled=True, rules=Rules(mode="continuous"))
LOG = logging.getLogger("test-activity")


def events(*sources: str, cell: str = "c", path: str = "x.ipynb") -> list:
    return parse_events(
        {
            "events": [
                {
                    "type": "execution",
                    "path": path,
                    "cell_id": cell,
                    "source": source,
                    "started": "2026-11-29T09:00:00Z",
                    "ended": "2026-11-29T09:00:01Z",
                    "status": "ok",
                }
                for source in sources
            ]
        }
    )


def closing(path: str, kind: str = "close") -> list:
    event = {"type": kind, "path": path, "time": "2026-11-29T10:00:00Z"}
    return parse_events({"events": [event]})


@pytest.fixture(scope="module")
async def storage(engine: AsyncEngine, database_url) -> AsyncIterator[tuple[str, str]]:
    """(role, URL of the role) for a user of the module's database."""
    role = await roles.ensure_user_role(engine, "fay")
    password = await roles.issue_role_password(engine, role)
    url = roles.user_database_url(database_url, role, password)
    yield role, url.render_as_string(hide_password=False)


async def stored(engine: AsyncEngine, role: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(func.count()).select_from(executions).where(executions.c.owner == role)
        )
        return found.scalar_one()


async def test_end_mode_asks_about_the_cells_that_changed_most_when_a_notebook_closes(
    engine: AsyncEngine, storage: tuple[str, str]
) -> None:
    role, url = storage
    manager = PostgresContentsManager(db_url=url)
    site = SiteSettings(enabled=True, rules=Rules(mode="end", cells_at_end=1))
    recorder = Recorder(site, manager.transaction, LOG)
    try:
        working = await recorder.record(
            events("a", "b", "c", cell="most", path="end.ipynb")
            + events("a", "b", cell="less", path="end.ipynb")
        )
        assert working == {"enabled": True, "mode": "end", "prompts": []}
        [prompt] = (await recorder.record(closing("end.ipynb")))["prompts"]
        assert prompt["cell_id"] == "most"
        assert (await recorder.record(closing("end.ipynb")))["prompts"][0]["cell_id"] == "less"
        assert (await recorder.record(closing("end.ipynb")))["prompts"] == []
        async with engine.begin() as conn:
            await query.set_recording_enabled(conn, role, False)
        assert (await recorder.record(closing("end.ipynb")))["enabled"] is False
        async with engine.begin() as conn:
            await query.set_recording_enabled(conn, role, True)
    finally:
        await manager.close()


async def test_questions_never_answered_are_asked_again_when_their_notebook_is_opened(
    engine: AsyncEngine, storage: tuple[str, str]
) -> None:
    """The reply to a close may reach no page (Notebook 7's tab closes with its notebook):
    the next open asks again, until the question is answered, skipped or silenced."""
    role, url = storage
    manager = PostgresContentsManager(db_url=url)
    site = SiteSettings(enabled=True, rules=Rules(mode="end", cells_at_end=2))
    recorder = Recorder(site, manager.transaction, LOG)
    try:
        await recorder.record(
            events("a", "b", cell="one", path="again.ipynb")
            + events("a", "b", cell="two", path="again.ipynb")
        )
        put = (await recorder.record(closing("again.ipynb")))["prompts"]
        assert [prompt["cell_id"] for prompt in put] == ["one", "two"]
        opened = await recorder.record(closing("again.ipynb", "open"))
        assert opened["prompts"] == put  # put together: by cell id
        assert (await recorder.record(closing("other.ipynb", "open")))["prompts"] == []
        await recorder.answer([Answer(uuid.UUID(put[0]["prompt_id"]), "skipped")])
        assert (await recorder.record(closing("again.ipynb", "open")))["prompts"] == put[1:]
        await recorder.answer([Answer(uuid.UUID(put[1]["prompt_id"]), "answered", "why")])
        assert (await recorder.record(closing("again.ipynb", "open")))["prompts"] == []
    finally:
        await manager.close()


async def test_events_held_while_the_database_is_down_are_stored_with_the_next_batch(
    engine: AsyncEngine, storage: tuple[str, str]
) -> None:
    role, url = storage
    nowhere = make_url(url).difference_update_query(["host"]).set(host="127.0.0.1", port=1)
    lost = PostgresContentsManager(db_url=nowhere.render_as_string(hide_password=False))
    found = PostgresContentsManager(db_url=url)
    recorder = Recorder(SITE, lost.transaction, LOG)
    before = await stored(engine, role)
    try:
        reply = await recorder.record(events("a", "b"))
        assert reply == {"enabled": True, "mode": "continuous", "prompts": []}
        await recorder.record(events("c"))
        assert len(recorder.backlog) == 3 and await stored(engine, role) == before
        recorder.transaction = found.transaction
        await recorder.record(events("d"))
        assert len(recorder.backlog) == 0 and await stored(engine, role) == before + 4
        assert recorder.backlog.dropped == 0
    finally:
        await lost.close()
        await found.close()


def test_too_many_or_too_old_held_events_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    backlog = Backlog(LOG, max_events=3, max_age=60.0, clock=lambda: now[0])
    backlog.hold(events("a", "b"))
    now[0] = 30.0
    backlog.hold(events("c", "d"))
    assert len(backlog) == 3 and backlog.dropped == 1
    now[0] = 70.0  # a and b's batch is older than a minute now
    taken = backlog.take()
    assert [event.source for _, event in taken] == ["c", "d"]
    assert backlog.dropped == 2
    backlog.put_back(taken)
    assert len(backlog) == 2
    assert "dropped 1 events held while the database was down (2 in all)" in caplog.text


def test_a_flood_of_events_is_refused_beyond_the_limit_per_minute() -> None:
    now = [0.0]
    guard = FloodGuard(limit=100, clock=lambda: now[0])
    guard.take(60)
    now[0] = 30.0
    guard.take(40)
    with pytest.raises(Flooded, match="More than 100 events in a minute; these 1 were"):
        guard.take(1)
    now[0] = 61.0  # the first 60 are out of the window
    guard.take(60)
