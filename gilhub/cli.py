"""``gilhub user …`` and ``gilhub token``: account management from the command line.

These talk to the database directly, with the same configuration as the hub
(``--data-dir``, ``GILHUB_DATA_DIR``, ``--db-url``, ``--config``,
``gilhub_config.py``), so they work whether or not the hub is running (while it
runs, on the PostgreSQL it runs). Other parts' subcommands (``storage``,
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
from gilhub.accounts import AccountError, Accounts, NewPassword, RecordedServers
from gilhub.app import HUB_ALIASES, HUB_FLAGS, GilHub
from gilhub.auth.tokens import create_token
from gilhub.db import DatabaseUnavailable
from gilhub.db.engine import use_selector_loop_on_windows
from gilhub.users import get_user_by_name, list_users


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
        except AccountError as error:  # a sentence for pages: "gilhub x: lowercase" here
            message = str(error)
            self.fail(message[:1].lower() + message[1:])

    def fail(self, message: str) -> None:
        print(f"gilhub {self.name}: {message}", file=sys.stderr)
        self.exit(1)

    async def with_database(self, action: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
        """Run ``action`` on the hub's database, saying which one it is (on stderr, so
        that what a command prints stays parseable). Never a new database unless asked
        (``--create``): a command on the wrong data directory would otherwise succeed on a
        database that the hub does not use."""
        engine = await self.hub.open_database(create=self.hub.create_database)
        print(f"gilhub {self.name}: using {self.hub.describe_database()}", file=sys.stderr)
        try:
            return await action(engine)
        finally:
            await self.hub.close_database()

    async def run(self, engine: AsyncEngine) -> None:
        raise NotImplementedError

    def accounts(self, engine: AsyncEngine) -> Accounts:
        """The hub's accounts service, stopping servers from their recorded state (a
        running hub hears of every change and stops what it runs itself)."""
        return Accounts(parent=self.hub, hub=self.hub, db=engine, servers=RecordedServers(self.hub))


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

    def typed_password(self) -> str | None:
        """The password from standard input; ``None`` (generate one) without --password-stdin."""
        if not self.password_stdin:
            return None
        if sys.stdin.isatty():
            return getpass.getpass("Password: ")
        return sys.stdin.readline().rstrip("\r\n")

    @staticmethod
    def show_generated(new: NewPassword | None) -> None:
        if new is not None and new.generated:
            print(f"Password (shown only now): {new.password}")
            print("It is a one-time password: the first login asks for a new one.")


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
        _, new = await self.accounts(engine).create(name, self.typed_password(), admin=self.admin)
        kind = "administrator" if self.admin else "user"
        print(f"Added {kind} {name}.")
        self.show_generated(new)


class UserPasswordApp(PasswordCommand):
    name = "user password"
    description = """Set a user's password (e.g. a lost admin password) and end their
    login sessions. Without --password-stdin a random one is generated and printed once."""
    arguments = ("name",)
    flags = password_flags("UserPasswordApp")

    async def run(self, engine: AsyncEngine) -> None:
        accounts = self.accounts(engine)
        user = await accounts.get(self.extra_args[0])
        new = await accounts.set_password(user, self.typed_password())
        print(f"Password of {user.name} changed; their sessions were ended.")
        self.show_generated(new)


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
        accounts = self.accounts(engine)
        user = await accounts.get(self.extra_args[0])
        await accounts.remove(user)
        print(f"Removed {user.name}.")


class UserRenameApp(HubCommand):
    name = "user rename"
    description = "Rename a user (their notebooks follow); their server must be stopped."
    arguments = ("name", "new_name")

    async def run(self, engine: AsyncEngine) -> None:
        accounts = self.accounts(engine)
        user = await accounts.get(self.extra_args[0])
        renamed = await accounts.rename(user, self.extra_args[1])
        print(f"Renamed {user.name} to {renamed.name}.")


class UserAdminApp(HubCommand):
    name = "user admin"
    description = "Make a user an administrator (or, with --revoke, no longer one)."
    arguments = ("name",)
    flags = {
        **HUB_FLAGS,
        "revoke": ({"UserAdminApp": {"revoke": True}}, "Take the admin rights away."),
    }
    revoke = Bool(False, config=True, help="Take the admin rights away instead.")

    async def run(self, engine: AsyncEngine) -> None:
        accounts = self.accounts(engine)
        user = await accounts.set_admin(await accounts.get(self.extra_args[0]), not self.revoke)
        print(f"{user.name} {'is now' if user.is_admin else 'is no longer'} an administrator.")


class UserApp(Application):
    name = "user"
    description = "Add, list and remove gilhub users; set their passwords."
    version = __version__
    subcommands = {
        "add": ("gilhub.cli.UserAddApp", UserAddApp.description),
        "list": ("gilhub.cli.UserListApp", UserListApp.description),
        "remove": ("gilhub.cli.UserRemoveApp", UserRemoveApp.description),
        "password": ("gilhub.cli.UserPasswordApp", UserPasswordApp.description),
        "rename": ("gilhub.cli.UserRenameApp", UserRenameApp.description),
        "admin": ("gilhub.cli.UserAdminApp", UserAdminApp.description),
    }

    def start(self) -> None:
        if self.subapp is None:
            print(
                "gilhub user: say add, list, remove, password, rename or admin (see --help)",
                file=sys.stderr,
            )
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
