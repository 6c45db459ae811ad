"""A recorded notebook story, written straight into the activity tables (for pages' tests)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gilhub.activity.schema import answers, cell_versions, executions, prompts

SOURCES = ("fit(a)", "fit(a, b)")


async def record_story(engine: AsyncEngine, owner: str, path: str) -> None:
    """One cell of ``path``: a failed run, a fix, and an answer about the fix."""
    started = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
    cell = {"owner": owner, "path": path, "cell_id": "c1"}
    async with engine.begin() as conn:
        for minute, source in enumerate(SOURCES):
            version = hashlib.sha256(source.encode()).hexdigest()
            moment = started + timedelta(minutes=minute)
            await conn.execute(
                insert(cell_versions).values(**cell, cell_version=version, source=source)
            )
            await conn.execute(
                insert(executions).values(
                    **cell,
                    cell_version=version,
                    execution_count=minute + 1,
                    started=moment,
                    ended=moment,
                    status="ok" if minute else "error",
                    ename=None if minute else "TypeError",
                    evalue=None if minute else "missing b",
                )
            )
        prompt = await conn.execute(
            insert(prompts)
            .values(**cell, cell_version=version, reason="fixed", outcome="answered")
            .returning(prompts.c.id)
        )
        await conn.execute(
            insert(answers).values(
                **cell,
                cell_version=version,
                prompt_id=prompt.scalar_one(),
                answer="Fitting both parameters",
            )
        )
