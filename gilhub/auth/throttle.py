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
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gilhub.schema import login_failures


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
                select(func.pg_advisory_xact_lock(func.hashtextextended(keys.user, 0)))
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
            result = await conn.execute(self._pause_query(key, limit))
            row = result.one()
            if row.failures >= limit:
                wait = max(wait, float(row.remaining or 0))
        return math.ceil(wait)

    def _pause_query(self, key: str, limit: int) -> Any:
        """The key's failures in the window, and the seconds its pause still lasts: the
        pause doubles with every failure past the limit, up to the window."""
        window = _interval(self.window.total_seconds())
        failures = func.count()
        pause = func.least(
            _interval(
                self.pause.total_seconds() * func.power(2, func.greatest(failures - limit, 0))
            ),
            window,
        )
        remaining = func.extract(
            "epoch", func.max(login_failures.c.failed_at) + pause - func.clock_timestamp()
        )
        return select(failures.label("failures"), remaining.label("remaining")).where(
            login_failures.c.key == key, login_failures.c.failed_at > func.now() - window
        )

    async def failed(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        """The attempt failed: count it against the address too."""
        await self._record(conn, keys.address)

    async def succeeded(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        """The attempt succeeded: the user's count at this address starts again."""
        if keys.user is not None:
            await conn.execute(delete(login_failures).where(login_failures.c.key == keys.user))

    async def undecided(self, conn: AsyncConnection, keys: LoginKeys, admission: Admission) -> None:
        """The authenticator could not decide (its directory was down): not a failure."""
        if keys.user is not None and admission.attempt is not None:
            await conn.execute(
                delete(login_failures).where(
                    login_failures.c.key == keys.user,
                    login_failures.c.failed_at == admission.attempt,
                )
            )

    async def _record(self, conn: AsyncConnection, key: str) -> datetime:
        result = await conn.execute(
            insert(login_failures).values(key=key).returning(login_failures.c.failed_at)
        )
        return result.scalar_one()

    async def _drop_expired(self, conn: AsyncConnection, keys: LoginKeys) -> None:
        await conn.execute(
            delete(login_failures).where(
                login_failures.c.key.in_(keys.all()),
                login_failures.c.failed_at <= func.now() - _interval(self.window.total_seconds()),
            )
        )

    async def purge(self, conn: AsyncConnection) -> None:
        """Drop failures that no longer count (housekeeping)."""
        await conn.execute(
            delete(login_failures).where(
                login_failures.c.failed_at <= func.now() - _interval(self.window.total_seconds())
            )
        )


def _interval(seconds: Any) -> Any:
    """An SQL interval of ``seconds`` (a number or an SQL expression)."""
    return func.make_interval(0, 0, 0, 0, 0, 0, seconds)
