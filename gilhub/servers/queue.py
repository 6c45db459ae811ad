"""The spawn queue: at most N servers start at once, the others wait their turn in order.

A server start is mostly CPU (imports, extension loading); on a small machine twenty
at once all run out of their start timeout together, while the same twenty one or
two at a time each start in seconds. Waiting is first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable


class SpawnQueue:
    """Hands out ``limit`` start slots; ``on_change`` is called whenever the line moves."""

    def __init__(self, limit: int, on_change: Callable[[], None] = lambda: None) -> None:
        self.limit = max(1, limit)
        self.on_change = on_change
        self.starting = 0
        self._waiting: deque[tuple[Hashable, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def ahead(self) -> dict[Hashable, int]:
        """How many starts come before each waiting key's (running ones included), all in
        one pass over the line (asking key by key made each move of a long line cost its
        length squared)."""
        counts: dict[Hashable, int] = {}
        for index, (key, _) in enumerate(self._waiting):
            counts.setdefault(key, self.starting + index)
        return counts

    @contextlib.asynccontextmanager
    async def slot(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for a start slot (in order of arrival) and hold it inside the block."""
        if self.starting < self.limit and not self._waiting:
            self.starting += 1
        else:
            await self._wait_turn(key)
        try:
            yield
        finally:
            self._release()

    async def _wait_turn(self, key: Hashable) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (key, turn)
        self._waiting.append(entry)
        self.on_change()
        try:
            await turn
        except asyncio.CancelledError:
            if entry in self._waiting:
                self._waiting.remove(entry)
                self.on_change()
            elif not turn.cancelled():
                self._release()  # the slot was handed over just as the wait was cancelled
            raise

    def _release(self) -> None:
        self.starting -= 1
        self.admit()

    def admit(self) -> None:
        """Hand free slots to the first in line (also after ``limit`` was raised)."""
        while self._waiting and self.starting < self.limit:
            _, turn = self._waiting.popleft()
            if not turn.done():  # a cancelled wait may not have left the line yet
                turn.set_result(None)
                self.starting += 1
        self.on_change()
