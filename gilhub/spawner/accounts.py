"""Linux, hub running as root: one system account per gilhub user.

Accounts are named ``PREFIX + NAME`` (default prefix ``gilhub-``, as The
Littlest JupyterHub names its ``jupyter-NAME`` accounts), created with
``useradd`` on the user's first start: a home directory of mode 0700, a group
of their own, and no login shell (``/usr/sbin/nologin``: terminals in
JupyterLab still work, logging in over ssh does not). When the gilhub user is
removed the account is kept, locked or deleted, as configured.

``pwd`` is imported inside the functions: this module is imported on Windows too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from typing import Any

ACCOUNT_NAME_MAX = 32  # what useradd accepts
NO_LOGIN_SHELL = "/usr/sbin/nologin"
KEEP, LOCK, DELETE = "keep", "lock", "delete"

# useradd and userdel lock /etc/passwd and fail rather than wait when it is locked.
_account_changes = asyncio.Lock()


class AccountError(RuntimeError):
    """A system account could not be found, created or changed."""


def account_name(prefix: str, user_name: str) -> str:
    """``prefix + user_name``, shortened with a hash of the name when longer than 32."""
    name = prefix + user_name
    if len(name) <= ACCOUNT_NAME_MAX:
        return name
    digest = hashlib.sha256(user_name.encode()).hexdigest()[:6]
    return f"{name[: ACCOUNT_NAME_MAX - len(digest) - 1]}-{digest}"


def find_account(name: str) -> Any | None:
    """The ``pwd`` entry of account ``name``, or ``None``."""
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


async def ensure_account(name: str, comment: str) -> Any:
    """The ``pwd`` entry of account ``name``, created (home 0700, no login) if missing."""
    async with _account_changes:
        existing = find_account(name)
        if existing is not None:
            return existing
        await _run(
            "useradd", "--create-home", "--user-group", "--shell", NO_LOGIN_SHELL,
            "--comment", comment, name,
        )  # fmt: skip
    created = find_account(name)
    if created is None:
        raise AccountError(f"useradd did not create the account {name}")
    os.chmod(created.pw_dir, 0o700)
    return created


async def retire_account(name: str, action: str) -> None:
    """What happens to the account when its gilhub user is removed: keep, lock or delete it."""
    if action == KEEP or find_account(name) is None:
        return
    async with _account_changes:
        if action == LOCK:
            await _run("usermod", "--lock", "--expiredate", "1", name)
        elif action == DELETE:
            await _run("userdel", "--remove", name)
        else:
            raise ValueError(f"unknown action for removed users' accounts: {action!r}")


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        message = output.decode(errors="replace").strip()
        raise AccountError(f"{command[0]} failed (exit {process.returncode}): {message}")
