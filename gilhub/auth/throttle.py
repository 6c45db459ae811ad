"""Failed-login throttling that slows attackers down without locking owners out.

Failures are counted in ``login_failures`` under two keys: the user name *from
one client address* (``user:NAME@ADDRESS``) and the address across all users
(``addr:ADDRESS``). So an attacker's failures from one address never stop the
owner logging in from another. Once a key reaches its limit inside ``window``,
logins under it pause: ``pause`` after the last failure, doubling with every
further failure, never longer than ``window``. Nothing is locked for good.

Each attempt is counted as a failure *before* the password is checked (and
forgiven if it succeeds), under a transaction-scoped advisory lock per key:
concurrent attempts on one key are admitted one after another, each seeing the
others' counts, so a burst of attempts gets at most the limit through to
password verification.

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
class LoginThrottle:
    max_failures_per_user: int
    max_failures_per_address: int
    window: timedelta
    pause: timedelta

    def limits(self, user_name: str | None, address: str) -> dict[str, int]:
        """The keys an attempt counts against, with their limits (0: unlimited)."""
        limits = {f"addr:{address}": self.max_failures_per_address}
        if user_name is not None:
            limits[f"user:{user_name}@{address}"] = self.max_failures_per_user
        return limits

    async def admit(self, conn: AsyncConnection, limits: dict[str, int]) -> Admission:
        """Record the attempt as a failure, unless a key is pausing; serialised per key."""
        for key in sorted(limits):  # one order everywhere: no deadlock between attempts
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )
        wait = await self.retry_after(conn, limits)
        if wait:
            return Admission(wait)
        return Admission(0, await self._count_attempt(conn, limits))

    async def retry_after(self, conn: AsyncConnection, limits: dict[str, int]) -> int:
        """Seconds until a login may be tried; 0 when no key is pausing."""
        wait = 0.0
        for key, limit in limits.items():
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

    async def _count_attempt(self, conn: AsyncConnection, limits: dict[str, int]) -> datetime:
        """Record an attempt as failed (and drop expired rows); returns its timestamp."""
        keys = list(limits)
        await conn.execute(
            text(
                "DELETE FROM login_failures"
                " WHERE key = ANY(CAST(:keys AS text[])) AND failed_at <= now() - :window"
            ),
            {"keys": keys, "window": self.window},
        )
        result = await conn.execute(
            text(
                "INSERT INTO login_failures (key) SELECT unnest(CAST(:keys AS text[]))"
                " RETURNING failed_at"
            ),
            {"keys": keys},
        )
        return result.scalars().first()

    async def purge(self, conn: AsyncConnection) -> None:
        """Drop failures that no longer count (housekeeping)."""
        await conn.execute(
            text("DELETE FROM login_failures WHERE failed_at <= now() - :window"),
            {"window": self.window},
        )

    async def forgive(
        self, conn: AsyncConnection, limits: dict[str, int], attempt: datetime
    ) -> None:
        """After a successful login (or one the authenticator could not decide): drop
        this attempt, and restart the count of the user at this address."""
        user_keys = [key for key in limits if key.startswith("user:")]
        await conn.execute(
            text(
                "DELETE FROM login_failures WHERE (key = ANY(CAST(:keys AS text[]))"
                " AND failed_at = :attempt) OR key = ANY(CAST(:user_keys AS text[]))"
            ),
            {"keys": list(limits), "attempt": attempt, "user_keys": user_keys},
        )
