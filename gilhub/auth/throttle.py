"""Failed-login throttling, per user name and per client address.

Each attempt is counted as a failure in ``login_failures`` (keys ``user:NAME``
and ``addr:ADDRESS``) *before* the password is checked, and forgiven if it
succeeds, so that many attempts sent at once are counted too. A key with its
limit of failures inside ``window`` is locked until the oldest of those falls
out of the window; while locked even a correct password is refused.

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
class LoginThrottle:
    max_failures_per_user: int
    max_failures_per_address: int
    window: timedelta

    def limits(self, user_name: str | None, address: str) -> dict[str, int]:
        """The keys an attempt counts against, with their limits (0: unlimited)."""
        limits = {f"addr:{address}": self.max_failures_per_address}
        if user_name is not None:
            limits[f"user:{user_name}"] = self.max_failures_per_user
        return limits

    async def retry_after(self, conn: AsyncConnection, limits: dict[str, int]) -> int:
        """Seconds until a login may be tried; 0 when no key is locked."""
        wait = 0.0
        for key, limit in limits.items():
            if limit <= 0:
                continue
            result = await conn.execute(
                text(
                    "SELECT EXTRACT(EPOCH FROM (failed_at + :window - now())) FROM login_failures"
                    " WHERE key = :key AND failed_at > now() - :window"
                    " ORDER BY failed_at DESC OFFSET :offset LIMIT 1"
                ),
                {"key": key, "window": self.window, "offset": limit - 1},
            )
            wait = max(wait, float(result.scalar_one_or_none() or 0))
        return math.ceil(wait)

    async def count_attempt(self, conn: AsyncConnection, limits: dict[str, int]) -> datetime:
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
        self, conn: AsyncConnection, limits: dict[str, int], attempt: datetime, user_name: str
    ) -> None:
        """After a successful login: drop this attempt, and restart the user's count."""
        await conn.execute(
            text(
                "DELETE FROM login_failures"
                " WHERE (key = ANY(CAST(:keys AS text[])) AND failed_at = :attempt) OR key = :user"
            ),
            {"keys": list(limits), "attempt": attempt, "user": f"user:{user_name}"},
        )
