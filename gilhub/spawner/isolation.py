"""How users' servers are kept apart on this machine, chosen once at hub start.

=========================  ==================================================
``isolation``              what each user's server gets
=========================  ==================================================
``system-users+sandbox``   a system account of its own and a bubblewrap sandbox
``system-users``           a system account of its own (hub running as root)
``sandbox``                a bubblewrap sandbox, under the hub's account
``none``                   nothing: every server runs under the hub's account
``auto`` (default)         the strongest of these that works here
=========================  ==================================================

``auto`` means system accounts plus the sandbox when the hub runs as root on
Linux (system accounts alone where bubblewrap does not work), the sandbox when
it does not run as root and ``bwrap`` works, and ``none`` elsewhere (Windows,
macOS, no bubblewrap), with a warning at start and a banner on the admin page.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTO, SYSTEM_USERS, SANDBOX, BOTH, NONE = (
    "auto", "system-users", "sandbox", "system-users+sandbox", "none",
)  # fmt: skip
MODES = (AUTO, SYSTEM_USERS, SANDBOX, BOTH, NONE)

NOT_ISOLATED_WARNING = "users are not isolated from each other"


class IsolationUnavailable(RuntimeError):
    """The isolation asked for cannot be had here; the message says why and what to do."""


@dataclass(frozen=True)
class Isolation:
    """The isolation in force, and why it is weaker than asked for (``note``), if it is."""

    system_users: bool
    sandbox: bool
    note: str = ""

    @property
    def isolated(self) -> bool:
        return self.system_users or self.sandbox

    @property
    def mode(self) -> str:
        if self.system_users:
            return BOTH if self.sandbox else SYSTEM_USERS
        return SANDBOX if self.sandbox else NONE

    def describe(self) -> str:
        what = {
            BOTH: "each user's server runs as a system account of its own, in a sandbox",
            SYSTEM_USERS: "each user's server runs as a system account of its own",
            SANDBOX: "each user's server runs in a bubblewrap sandbox",
            NONE: f"{NOT_ISOLATED_WARNING}: every server runs under the hub's own account",
        }[self.mode]
        return f"{what} ({self.note})" if self.note else what


def choose_isolation(
    requested: str, *, root: bool, sandbox_problem: str | None, allow_root: bool
) -> Isolation:
    """The isolation ``requested`` amounts to on this machine, or :class:`IsolationUnavailable`.

    ``root``: the hub runs as root on a POSIX system; ``sandbox_problem``: why
    bubblewrap does not work here (``None``: it works).
    """
    if requested == AUTO:
        note = f"no sandbox: {sandbox_problem}" if sandbox_problem else ""
        return Isolation(system_users=root, sandbox=sandbox_problem is None, note=note)
    wants_accounts = requested in (SYSTEM_USERS, BOTH)
    wants_sandbox = requested in (SANDBOX, BOTH)
    if wants_accounts and not root:
        raise IsolationUnavailable(f"isolation {requested!r} needs the hub to run as root on Linux")
    if wants_sandbox and sandbox_problem:
        raise IsolationUnavailable(f"isolation {requested!r}: {sandbox_problem}")
    if root and not wants_accounts and not allow_root:
        raise IsolationUnavailable(
            f"isolation {requested!r} with the hub running as root would run users' code as"
            " root; use 'system-users+sandbox' (or 'auto'), or set"
            " c.LocalProcessSpawner.allow_root = True to accept root servers"
        )
    return Isolation(system_users=wants_accounts, sandbox=wants_sandbox)
