"""Failed-login throttling that slows attackers down without locking owners out.

Failures are counted in ``login_failures`` under two keys: the user name *from
one client address* (``user:NAME@ADDRESS``) and the address across all users
(``addr:ADDRESS``). So an attacker's failures from one address never stop the
owner logging in from another. Once a key reaches its limit inside ``window``,
logins under it pause: ``pause`` after the last failure, doubling with every
further failure, never longer than ``window``. Nothing is locked for good.

Counting is race-free where it matters: every attempt on a user name takes a
transaction-scoped advisory lock on its key and is counted as a failure
*before* its password is checked (and forgiven if it succeeds), so concurrent
attempts on one name see each other and a burst gets at most the limit through
to password verification. The address key counts failures once they are known,
so that a whole lab behind one NAT address can log in at the same moment; a
burst across many names can overshoot the address limit by its own size, once.

The per-address limit is higher than the per-user one because a whole lab may
share one address behind NAT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Admission:
    """Either admitted (``attempt`` is its recorded time) or told to wait ``wait`` seconds."""

    wait: int
    attempt: datetime | None = None


@dataclass(frozen=True)
class LoginKeys:
    """What one login attempt counts against."""

    address: str
    user: str | None

    def all(self) -> list[str]:
        return [key for key in (self.address, self.user) if key is not None]


@dataclass(frozen=True)
class LoginThrottle:
    max_failures_per_user: int
    max_failures_per_address: int
    window: timedelta
    pause: timedelta

    @staticmethod
    def keys(user_name: str | None, address: str) -> LoginKeys:
        """``user_name`` only when it is a valid name (it bounds the key's length)."""
        user = f"user:{user_name}@{address}" if user_name is not None else None
        return LoginKeys(address=f"addr:{address}", user=user)

    def _limit(self, key: str) -> int:
        return (
            self.max_failures_per_user
            if key.startswith("user:")
            else (self.max_failures_per_address)
        )

    async def admit(self, conn: AsyncConnection, keys: LoginKeys) -> Admission:
        """Let the attempt through (counting it against the user name at once) unless a
        key is pausing; serialised per user name and address."""
        if keys.user is not None:  # the address key is only read: logins of a lab stay parallel
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": keys.user}
            )
        wait = await self.retry_after(conn, keys)
        if wait:
            return Admission(wait)
        await self._drop_expired(conn, keys)
        if keys.user is None:
            return Admission(0)
        return Admission(0, await self._record(conn, keys.user))

    async def retry_after(self, conn: AsyncConnection, keys: LoginKeys) -> int:
        """Seconds until a login may be tried; 0 when no key is pausing."""
        wait = 0.0
        for key in keys.all():
            limit = self._limit(key)
            if limit <= 0:
                continue
            result = await conn.execute(
                text(
                    "SELECT count(*) AS failures, EXTRACT(EPOCH FROM (max(failed_at)"
                    " + LEAST(:pause * power(2, GREATEST(count(*) - :limit, 0)), :window)"
                    " - clock_timestamp())) AS remaining"
                    " FROM login_failures WHERE key = :key AND failed_at > now() - :window"
                ),
                {"key": key, "limit": limit, "pause": self.pause, "window": self.window},
            )
            row = result.one()
            if row.failures >= limit:
                wait = max(wait, float(row.remaining or 0))
        return math.ceil(wait)

    async def failed(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        """The attempt failed: count it against the address too."""
        await self._record(conn, keys.address)

    async def succeeded(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        """The attempt succeeded: the user's count at this address starts again."""
        if keys.user is not None:
            await conn.execute(
                text("DELETE FROM login_failures WHERE key = :key"), {"key": keys.user}
            )

    async def undecided(self, conn: AsyncConnection, keys: LoginKeys, admission: Admission) -> None:
        """The authenticator could not decide (its directory was down): not a failure."""
        if keys.user is not None and admission.attempt is not None:
            await conn.execute(
                text("DELETE FROM login_failures WHERE key = :key AND failed_at = :attempt"),
                {"key": keys.user, "attempt": admission.attempt},
            )

    async def _record(self, conn: AsyncConnection, key: str) -> datetime:
        result = await conn.execute(
            text("INSERT INTO login_failures (key) VALUES (:key) RETURNING failed_at"),
            {"key": key},
        )
        return result.scalar_one()

    async def _drop_expired(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        await conn.execute(
            text(
                "DELETE FROM login_failures"
                " WHERE key = ANY(CAST(:keys AS text[])) AND failed_at <= now() - :window"
            ),
            {"keys": keys.all(), "window": self.window},
        )

    async def purge(self, conn: AsyncConnection) -> None:
        """Drop failures that no longer count (housekeeping)."""
        await conn.execute(
            text("DELETE FROM login_failures WHERE failed_at <= now() - :window"),
            {"window": self.window},
        )
