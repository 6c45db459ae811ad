"""Password hashing with argon2 (argon2-cffi), in a bounded worker pool.

argon2 is slow and memory-hard on purpose: each hash or verification takes
about 64 MiB for a moment. It runs in worker threads so the event loop keeps
serving, and in a pool of a fixed, small size so that a burst of logins queues
instead of taking hundreds of MiB at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError

_argon2 = Argon2Hasher()
Result = TypeVar("Result")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user has no password, so that a wrong user name
    costs as much time as a wrong password and does not reveal who exists."""
    return _argon2.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _argon2.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


#: How many steps below the hub's CPU priority the hashing threads run.
HASHING_NICENESS = 5


def _yield_to_the_event_loop() -> None:
    """Lower this worker thread's CPU priority (a thread initializer).

    A verification takes about 0.2 s of CPU. When logins come in a burst on a busy machine,
    the hub's event loop, which serves everyone, then gets the CPU before the hashing. Linux
    gives each thread its own nice value; elsewhere (Windows, macOS) this does nothing.
    """
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, min(19, current + HASHING_NICENESS))


class PasswordHasher:
    """argon2 hashing and verification in at most ``workers`` threads at once."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        #: verifications done (what throttling tests count)
        self.verifications = 0

    async def _run(self, function: Callable[..., Result], *args: object) -> Result:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.workers, thread_name_prefix="argon2", initializer=_yield_to_the_event_loop
            )
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def hash(self, password: str) -> str:
        return await self._run(_argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; always spends one argon2 verification."""
        self.verifications += 1
        return await self._run(_verify, password_hash, password)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def generate_password() -> str:
    """A random password for new accounts, shown once."""
    return secrets.token_urlsafe(12)
