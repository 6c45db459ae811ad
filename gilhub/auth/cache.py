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

from gilhub.auth.scopes import Identity


class AuthCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Identity | None]] = {}

    @staticmethod
    def key(kind: str, credential: str) -> str:
        """Entries are keyed by a hash: the cache holds no usable credential."""
        return hashlib.sha256(f"{kind}\0{credential}".encode()).hexdigest()

    def get(self, key: str) -> Identity | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, identity = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return identity

    async def get_or_fetch(
        self, key: str, fetch: Callable[[], Awaitable[Identity | None]]
    ) -> Identity | None:
        """The cached identity for ``key``, else ``fetch()``'s, shared by concurrent callers."""
        identity = self.get(key)
        if identity is not None:
            return identity
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # shielded: one caller going away must not cancel the others' lookup
        identity = await asyncio.shield(pending)
        if identity is not None:
            self.put(key, identity)
        return identity

    def put(self, key: str, identity: Identity) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, identity)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_user(self, user_id: int) -> None:
        for key in [k for k, (_, who) in self._entries.items() if who.user.id == user_id]:
            del self._entries[key]
