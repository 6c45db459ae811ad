"""A short-lived in-memory cache of who a cookie or token belongs to.

Every proxied request is authenticated; asking PostgreSQL each time costs a
few milliseconds, which would dominate the proxy's added latency. Resolved
credentials are therefore remembered for ``ttl`` seconds. Changes made through
this hub (logout, password change or reset, admin rights, removal, token
deletion) evict the affected entries at once; changes made by another process
(``gilhub user remove`` on the command line) take effect within ``ttl``.
Only successful lookups are cached, so a new login or token works at once.
Concurrent requests with the same credential share one lookup: when an entry
expires under load, the database is asked once, not once per waiting request.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from gilhub.users import User


class AuthCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, User]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[User | None]] = {}

    @staticmethod
    def key(kind: str, credential: str) -> str:
        """Entries are keyed by a hash: the cache holds no usable credential."""
        return hashlib.sha256(f"{kind}\0{credential}".encode()).hexdigest()

    def get(self, key: str) -> User | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, user = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return user

    async def get_or_fetch(
        self, key: str, fetch: Callable[[], Awaitable[User | None]]
    ) -> User | None:
        """The cached user for ``key``, else ``fetch()``'s, shared by concurrent callers."""
        user = self.get(key)
        if user is not None:
            return user
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # shielded: one caller going away must not cancel the others' lookup
        user = await asyncio.shield(pending)
        if user is not None:
            self.put(key, user)
        return user

    def put(self, key: str, user: User) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, user)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_user(self, user_id: int) -> None:
        for key in [k for k, (_, user) in self._entries.items() if user.id == user_id]:
            del self._entries[key]
