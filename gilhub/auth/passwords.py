"""Password hashing with argon2 (argon2-cffi).

argon2 is slow on purpose; hashing and verifying run in a worker thread so the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that a wrong user name
    costs as much time as a wrong password and does not reveal who exists."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; always spends one argon2 verification."""
    if not password_hash:
        await asyncio.to_thread(lambda: _verify(_dummy_hash(), password))
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def generate_password() -> str:
    """A random password for new accounts, shown once."""
    return secrets.token_urlsafe(12)
