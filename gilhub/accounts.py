"""Accounts: the one service that creates, removes and renames users and sets
their passwords and admin rights.

Every front end calls it (the hub's pages, the REST API, ``gilhub user …`` and
the hub itself), so a change has the same effects whichever way it is made:

- a password change or reset ends the user's other login sessions;
- a removal stops the user's server first, then deletes the account with its
  sessions, tokens, database role and stored notebooks;
- the hub's in-memory authentication cache is evicted here, never by handlers.

The user's row and PostgreSQL role change in one transaction (role DDL is
transactional in PostgreSQL): a failure midway leaves user, role and notebooks
exactly as they were.

Each change is announced with ``NOTIFY gilhub_accounts`` in its transaction.
A running hub listens (:class:`AccountEvents`), so a change made by the
command line applies at once in the hub: its cache entries go, and the server
of a removed user is stopped. The command line itself stops a removed user's
server from the state the hub recorded (:class:`RecordedServers`), so that
also works while no hub runs.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from traitlets import Any as AnyTrait
from traitlets import Instance, Integer
from traitlets.config import LoggingConfigurable

from gilhub.auth.cache import AuthCache
from gilhub.auth.passwords import PasswordHasher, generate_password
from gilhub.auth.sessions import create_session, delete_session, delete_user_sessions
from gilhub.auth.tokens import delete_token
from gilhub.contents import roles
from gilhub.db.notify import Listener
from gilhub.runs.removal import end_user_runs
from gilhub.servers.query import server_record
from gilhub.users import (
    INTERFACES,
    USERNAME_RULE,
    User,
    delete_user_row,
    get_password_hash,
    get_user_by_name,
    insert_user,
    is_valid_username,
    touch_user,
    update_user,
)

#: The PostgreSQL notification channel account changes are announced on.
ACCOUNT_CHANNEL = "gilhub_accounts"
#: Seconds a removed user's run workers get to stop before they are killed.
STOP_GRACE_SECONDS = 5.0


class AccountError(Exception):
    """An account change that was refused; the message is meant for people."""


class InvalidUsername(AccountError):
    def __init__(self) -> None:
        super().__init__(f"Invalid user name: {USERNAME_RULE}.")


class UserExists(AccountError):
    def __init__(self, name: str) -> None:
        super().__init__(f"A user named {name} already exists.")


class NoSuchUser(AccountError):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is no user named {name}.")


class BadPassword(AccountError):
    """The password breaks the password rules."""


class NotPermitted(AccountError):
    """A change nobody may make, such as removing one's own account."""


class ServerNotStopped(AccountError):
    """The change needs the user's server stopped first."""


class ServerControl(Protocol):
    """How the service stops servers: the hub's ServerManager, or RecordedServers."""

    async def stop(self, user: User) -> None: ...


@dataclass(frozen=True)
class NewPassword:
    """A password set by the service; ``generated`` ones must be shown once."""

    password: str
    generated: bool


class Accounts(LoggingConfigurable):
    """Account changes with all their effects (see the module docstring)."""

    min_password_length = Integer(8, config=True, help="Shortest password accepted.")
    max_password_length = Integer(1024, config=True, help="Longest password accepted.")
    hashing_workers = Integer(
        2,
        config=True,
        help="""How many argon2 hashes or verifications run at once (each takes about
        64 MiB while it runs); further logins wait their turn.""",
    )

    hub = AnyTrait(None, allow_none=True, help="The GilHub application (its spawner class).")
    db = Instance(AsyncEngine, help="The hub's superuser engine.")
    servers = AnyTrait(None, allow_none=True, help="Stops servers (a ServerControl), if any.")
    auth_cache = Instance(AuthCache, allow_none=True, help="The hub's authentication cache.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hasher = PasswordHasher(self.hashing_workers)

    # -- rules --------------------------------------------------------------------

    def password_problem(self, password: object, repeated: str | None = None) -> str:
        """What is wrong with a new password, or ``""``."""
        if not isinstance(password, str):
            return "A password must be a string."
        if len(password) < self.min_password_length:
            return f"A password needs at least {self.min_password_length} characters."
        if len(password) > self.max_password_length:
            return "That password is too long."
        if repeated is not None and password != repeated:
            return "The two new passwords differ."
        return ""

    def _new_password(self, password: str | None) -> NewPassword:
        if password is None:
            return NewPassword(generate_password(), generated=True)
        problem = self.password_problem(password)
        if problem:
            raise BadPassword(problem)
        return NewPassword(password, generated=False)

    # -- reading --------------------------------------------------------------------

    async def get(self, name: str) -> User:
        async with self.db.connect() as conn:
            user = await get_user_by_name(conn, name)
        if user is None:
            raise NoSuchUser(name)
        return user

    async def verify_password(self, name: str, password: str) -> bool:
        """Does ``password`` match ``name``'s local password? (One argon2 verification,
        whether or not the user exists.)"""
        async with self.db.connect() as conn:
            password_hash = await get_password_hash(conn, name)
        return await self.hasher.verify(password_hash, password)

    async def has_password(self, name: str) -> bool:
        async with self.db.connect() as conn:
            return bool(await get_password_hash(conn, name))

    # -- changes --------------------------------------------------------------------

    async def create(
        self, name: str, password: str | None = None, *, admin: bool = False, local: bool = True
    ) -> tuple[User, NewPassword | None]:
        """Add a user with its database role and storage root.

        Without ``password`` one is generated (to be shown once) and must be changed
        at the first login. ``local=False`` makes an account without a password, for
        users an authenticator vouches for (a directory).
        """
        if not is_valid_username(name):
            raise InvalidUsername()
        new = self._new_password(password) if local else None
        password_hash = await self.hasher.hash(new.password) if new else None
        async with self.db.begin() as conn:
            user = await create_account(
                conn,
                name,
                password_hash=password_hash,
                admin=admin,
                must_change_password=bool(new and new.generated),
            )
        self.log.info("account %s created%s", name, " (admin)" if admin else "")
        return user, new

    async def remove(self, user: User, *, by: User | None = None) -> None:
        """Stop the user's server, delete the account and everything it owns, then let the
        spawner keep, lock or delete what it holds for them (a system account)."""
        if by is not None and by.id == user.id:
            raise NotPermitted("You cannot remove your own account.")
        if self.servers is not None:
            await self.servers.stop(user)
        spawner = None
        if self.hub is not None:
            spawner = self.hub.spawner_class(hub=self.hub, user=user, parent=self.hub)
        await end_user_runs(self.db, user.id, grace=STOP_GRACE_SECONDS, spawner=spawner)
        async with self.db.begin() as conn:
            if not await delete_account(conn, user):
                raise NoSuchUser(user.name)
        if user.db_role:
            await roles.end_role_sessions(self.db, user.db_role)
        self.forget(user)
        if spawner is not None:  # the spawner keeps, locks or deletes their system account
            await spawner.user_removed()
        self.log.info("account %s removed", user.name)

    async def rename(self, user: User, new_name: str) -> User:
        """Rename the user; its database role and notebooks follow. The server must be
        stopped (it logs in with the role's old name)."""
        if not is_valid_username(new_name):
            raise InvalidUsername()
        if new_name == user.name:
            return user
        try:
            async with self.db.begin() as conn:
                if await server_record(conn, user.id) is not None:
                    raise ServerNotStopped(
                        f"Stop {user.name}'s server before renaming the account."
                    )
                renamed = await update_user(conn, user.id, name=new_name)  # name taken: error
                if renamed is None:
                    raise NoSuchUser(user.name)
                if user.db_role:
                    role = await roles.rename_user_role(conn, user.db_role, new_name)
                    renamed = await update_user(conn, user.id, db_role=role)
                await announce(conn, user)
        except IntegrityError as error:
            raise UserExists(new_name) from error
        self.forget(user)
        self.log.info("account %s renamed to %s", user.name, new_name)
        assert renamed is not None
        return renamed

    async def set_password(
        self, user: User, password: str | None = None, *, keep_session: str | None = None
    ) -> NewPassword:
        """Set (or, without ``password``, generate) the user's password and end their
        sessions except ``keep_session``. A generated one must be changed at next login."""
        new = self._new_password(password)
        password_hash = await self.hasher.hash(new.password)
        async with self.db.begin() as conn:
            changed = await update_user(
                conn, user.id, password_hash=password_hash, must_change_password=new.generated
            )
            if changed is None:
                raise NoSuchUser(user.name)
            await delete_user_sessions(conn, user.id, keep=keep_session)
            await announce(conn, user)
        self.forget(user)
        return new

    async def set_admin(self, user: User, admin: bool, *, by: User | None = None) -> User:
        if by is not None and by.id == user.id and not admin:
            raise NotPermitted("You cannot revoke your own admin rights.")
        async with self.db.begin() as conn:
            changed = await update_user(conn, user.id, is_admin=admin)
            if changed is None:
                raise NoSuchUser(user.name)
            await announce(conn, user)
        self.forget(user)
        return changed

    async def set_interface(self, user: User, interface: str) -> User:
        """Make ``interface`` (a key of :data:`gilhub.users.INTERFACES`) the user's default."""
        if interface not in INTERFACES:
            raise AccountError(f"The interface is one of: {', '.join(INTERFACES)}.")
        async with self.db.begin() as conn:
            changed = await update_user(conn, user.id, interface=interface)
            if changed is None:
                raise NoSuchUser(user.name)
        self.forget(user)
        return changed

    # -- sessions and tokens ------------------------------------------------------------

    async def log_in(self, name: str, lifetime: timedelta, *, admin: bool = False) -> str:
        """Start a session for ``name``, whom an authenticator has just vouched for;
        a user it knows but gilhub does not yet is created (without a local password).
        ``admin`` grants admin rights (never takes them). Returns the session id."""
        async with self.db.connect() as conn:
            user = await get_user_by_name(conn, name)
        if user is None:
            with contextlib.suppress(UserExists):  # created meanwhile by a parallel login
                await self.create(name, admin=admin, local=False)
        async with self.db.begin() as conn:
            user = await get_user_by_name(conn, name)
            if user is None:
                raise NoSuchUser(name)
            if admin and not user.is_admin:
                await update_user(conn, user.id, is_admin=True)
            await touch_user(conn, user.id)
            return await create_session(conn, user.id, lifetime)

    async def log_out(self, user: User, session_id: str | None) -> None:
        if session_id is not None:
            async with self.db.begin() as conn:
                await delete_session(conn, session_id)
        self.forget(user)

    async def revoke_token(self, user: User, token_id: int) -> bool:
        async with self.db.begin() as conn:
            deleted = await delete_token(conn, user.id, token_id)
        self.forget(user)
        return deleted

    def forget(self, user: User) -> None:
        if self.auth_cache is not None:
            self.auth_cache.forget_user(user.id)

    def close(self) -> None:
        self.hasher.close()


# -- the transactional steps (on the caller's connection, never committing) -------------


async def create_account(
    conn: AsyncConnection,
    name: str,
    *,
    password_hash: str | None = None,
    admin: bool = False,
    must_change_password: bool = False,
) -> User:
    """Insert the user with its database role and storage root. Raises
    :class:`InvalidUsername` or :class:`UserExists`."""
    if not is_valid_username(name):
        raise InvalidUsername()
    user = await insert_user(
        conn,
        name,
        password_hash=password_hash,
        admin=admin,
        must_change_password=must_change_password,
    )
    if user is None:
        raise UserExists(name)
    role = await roles.create_user_role(conn, name)
    user = await update_user(conn, user.id, db_role=role)
    assert user is not None
    await announce(conn, user)
    return user


async def delete_account(conn: AsyncConnection, user: User) -> bool:
    """Delete the user (sessions, tokens and server record cascade), its stored
    notebooks and its role. False when there was no such user."""
    if not await delete_user_row(conn, user.id):
        return False
    if user.db_role:
        await roles.drop_role_and_storage(conn, user.db_role)
    await announce(conn, user, removed=True)
    return True


async def announce(conn: AsyncConnection, user: User, *, removed: bool = False) -> None:
    """Tell a listening hub (on commit) that ``user``'s account changed."""
    payload = json.dumps({"id": user.id, "name": user.name, "removed": removed})
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": ACCOUNT_CHANNEL, "payload": payload},
    )


# -- other processes' changes -----------------------------------------------------------


class AccountEvents:
    """The hub's ear for account changes made by other processes (the command line):
    evicts their cache entries and stops the servers of removed users."""

    def __init__(self, accounts: Accounts, libpq_url: str, retry_interval: float = 2.0) -> None:
        self.accounts = accounts
        self.listener = Listener(
            libpq_url,
            ACCOUNT_CHANNEL,
            self.heard,
            accounts.log,
            what="account changes",
            retry_interval=retry_interval,
        )

    def start(self) -> None:
        self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def heard(self, payload: str) -> None:
        await self.changed(json.loads(payload))

    async def changed(self, event: dict[str, Any]) -> None:
        user = User(id=event["id"], name=event["name"], is_admin=False, db_role=None)
        self.accounts.forget(user)
        if event["removed"] and self.accounts.servers is not None:
            await self.accounts.servers.stop(user)


class RecordedServers:
    """Stops a user's server where no hub's ServerManager is at hand (the command
    line): through the hub's spawner class, from the state the hub recorded."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    async def stop(self, user: User) -> None:
        async with self.hub.db.connect() as conn:
            record = await server_record(conn, user.id)
        if record is None:
            return
        spawner = self.hub.spawner_class(hub=self.hub, user=user, parent=self.hub)
        spawner.load_state(record.spawner_state)
        await spawner.stop()
