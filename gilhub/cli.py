"""``gilhub user …`` and ``gilhub token``: account management from the command line.

These talk to the database directly, with the same configuration as the hub
(``--data-dir``, ``--db-url``, ``--config``, ``gilhub_config.py``), so they work
whether or not the hub is running. Other parts' subcommands (``storage``,
``repo``, ``bib``) build on :class:`HubCommand` too.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from traitlets import Bool, Unicode
from traitlets.config import Application

from gilhub import __version__
from gilhub.app import HUB_ALIASES, HUB_FLAGS, GilHub
from gilhub.auth.passwords import generate_password
from gilhub.auth.sessions import delete_user_sessions
from gilhub.auth.tokens import create_token
from gilhub.db import DatabaseUnavailable
from gilhub.db.engine import use_selector_loop_on_windows
from gilhub.handlers.login import password_problem
from gilhub.users import (
    USERNAME_RULE,
    InvalidUsername,
    UserExists,
    create_user,
    delete_user,
    get_user_by_name,
    list_users,
    set_password,
)


class CommandFailed(Exception):
    """Ends a subcommand with this message on stderr and exit status 1."""


class HubCommand(Application):
    """A ``gilhub`` subcommand that works on the hub's database.

    Subclasses implement :meth:`run` (async, given the superuser engine with
    migrations applied) and raise :class:`CommandFailed` for user errors.
    """

    version = __version__
    aliases = HUB_ALIASES
    flags = HUB_FLAGS
    classes = [GilHub]  # the options the aliases set, for --help
    #: positional arguments: how many, and their names for messages
    arguments: tuple[str, ...] = ()

    @property
    def hub(self) -> GilHub:
        app = self.parent
        while app is not None and not isinstance(app, GilHub):
            app = app.parent
        if app is None:
            raise RuntimeError(f"{type(self).__name__} must run as a subcommand of gilhub")
        return app

    def start(self) -> None:
        if len(self.extra_args) != len(self.arguments):
            expected = " ".join(a.upper() for a in self.arguments) or "no arguments"
            self.fail(f"expected {expected}; see --help")
        use_selector_loop_on_windows()
        try:
            asyncio.run(self.with_database(self.run))
        except (CommandFailed, DatabaseUnavailable) as error:
            self.fail(str(error))

    def fail(self, message: str) -> None:
        print(f"gilhub {self.name}: {message}", file=sys.stderr)
        self.exit(1)

    async def with_database(self, action: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
        engine = await self.hub.open_database()
        try:
            return await action(engine)
        finally:
            await self.hub.close_database()

    async def run(self, engine: AsyncEngine) -> None:
        raise NotImplementedError


def password_flags(command: str) -> dict[str, tuple[dict, str]]:
    """The flags of :class:`PasswordCommand` subclass ``command``."""
    return {
        **HUB_FLAGS,
        "password-stdin": (
            {command: {"password_stdin": True}},
            "Read the password from standard input (a prompt when it is a terminal).",
        ),
    }


class PasswordCommand(HubCommand):
    """A command that sets a password: read from stdin, or generated and printed once."""

    password_stdin = Bool(False, config=True, help="Read the password from standard input.")

    def new_password(self) -> tuple[str, bool]:
        """The password to set, and whether it was generated (and must be shown)."""
        if not self.password_stdin:
            return generate_password(), True
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if password_problem(password):
            raise CommandFailed(password_problem(password))
        return password, False

    @staticmethod
    def show_generated(password: str, generated: bool) -> None:
        if generated:
            print(f"Password (shown only now): {password}")


class UserAddApp(PasswordCommand):
    name = "user add"
    description = """Add a user. Without --password-stdin a random password is
    generated and printed once."""
    examples = (
        "gilhub user add alice\necho 'long secret' | gilhub user add bob --admin --password-stdin"
    )
    arguments = ("name",)
    flags = {
        **password_flags("UserAddApp"),
        "admin": ({"UserAddApp": {"admin": True}}, "Make the user an administrator."),
    }
    admin = Bool(False, config=True, help="Make the new user an administrator.")

    async def run(self, engine: AsyncEngine) -> None:
        name = self.extra_args[0]
        password, generated = self.new_password()
        try:
            async with engine.begin() as conn:
                await create_user(conn, name, password, self.admin)
        except InvalidUsername as error:
            raise CommandFailed(f"invalid user name: {USERNAME_RULE}") from error
        except UserExists as error:
            raise CommandFailed(f"user {name} already exists") from error
        kind = "administrator" if self.admin else "user"
        print(f"Added {kind} {name}.")
        self.show_generated(password, generated)


class UserPasswordApp(PasswordCommand):
    name = "user password"
    description = """Set a user's password (e.g. a lost admin password) and end their
    login sessions. Without --password-stdin a random one is generated and printed once."""
    arguments = ("name",)
    flags = password_flags("UserPasswordApp")

    async def run(self, engine: AsyncEngine) -> None:
        name = self.extra_args[0]
        password, generated = self.new_password()
        async with engine.begin() as conn:
            user = await get_user_by_name(conn, name)
            if user is None:
                raise CommandFailed(f"no user named {name}")
            await set_password(conn, name, password)
            await delete_user_sessions(conn, user.id)
        print(f"Password of {name} changed; their sessions were ended.")
        self.show_generated(password, generated)


class UserListApp(HubCommand):
    name = "user list"
    description = "List users: name, admin, created, last activity."

    async def run(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            users = await list_users(conn)
        width = max([len(u.name) for u in users] + [4])
        print(f"{'NAME':<{width}}  ADMIN  CREATED           LAST ACTIVITY")
        for user in users:
            created = user.created.strftime("%Y-%m-%d %H:%M") if user.created else "-"
            active = user.last_activity.strftime("%Y-%m-%d %H:%M") if user.last_activity else "-"
            admin = "yes" if user.is_admin else "no"
            print(f"{user.name:<{width}}  {admin:<5}  {created:<16}  {active}")


class UserRemoveApp(HubCommand):
    name = "user remove"
    description = "Remove a user with their sessions, tokens and stored notebooks."
    arguments = ("name",)

    async def run(self, engine: AsyncEngine) -> None:
        name = self.extra_args[0]
        async with engine.begin() as conn:
            user = await get_user_by_name(conn, name)
            if user is None or not await delete_user(conn, name):
                raise CommandFailed(f"no user named {name}")
        # as the hub does: keep, lock or delete their system account
        await self.hub.spawner_class(hub=self.hub, user=user, parent=self.hub).user_removed()
        print(f"Removed {name}.")


class UserApp(Application):
    name = "user"
    description = "Add, list and remove gilhub users; set their passwords."
    version = __version__
    subcommands = {
        "add": ("gilhub.cli.UserAddApp", UserAddApp.description),
        "list": ("gilhub.cli.UserListApp", UserListApp.description),
        "remove": ("gilhub.cli.UserRemoveApp", UserRemoveApp.description),
        "password": ("gilhub.cli.UserPasswordApp", UserPasswordApp.description),
    }

    def start(self) -> None:
        if self.subapp is None:
            print("gilhub user: say add, list, remove or password (see --help)", file=sys.stderr)
            self.exit(1)
        self.subapp.start()


class TokenApp(HubCommand):
    name = "token"
    description = "Print a new API token for a user (shown once: store it)."
    examples = "gilhub token alice --note 'idle culler'"
    arguments = ("name",)
    aliases = {**HUB_ALIASES, "note": "TokenApp.note"}
    note = Unicode("Created on the command line", config=True, help="What the token is for.")

    async def run(self, engine: AsyncEngine) -> None:
        name = self.extra_args[0]
        async with engine.begin() as conn:
            user = await get_user_by_name(conn, name)
            if user is None:
                raise CommandFailed(f"no user named {name}")
            new = await create_token(conn, user.id, self.note)
        print(new.token)
