"""Pluggable authentication, in JupyterHub's shape.

An :class:`Authenticator` answers one question: given what the login form
sent, who is this (a user name), or nobody (``None``)? The hub picks one with
``c.GilHub.authenticator_class``: a class, an import path, or a short name
registered in the entry-point group ``gilhub.authenticators`` (``password``,
``ldap``, and those of other packages). The login handler throttles failed
attempts around whichever authenticator runs, and creates the session through
the accounts service (:class:`gilhub.accounts.Accounts`), which also creates
users that an authenticator vouches for but gilhub does not know yet.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Set, Type, Unicode
from traitlets.config import LoggingConfigurable

from gilhub.users import is_valid_username

ENTRY_POINT_GROUP = "gilhub.authenticators"


class AuthenticatorUnavailable(Exception):
    """The authenticator could not decide (its directory did not answer); the message
    is shown on the login page."""


class Authenticator(LoggingConfigurable):
    """Base class: subclasses implement :meth:`authenticate`."""

    hub = AnyTrait(help="The GilHub application (its accounts service among others).")

    allowed_users = Set(
        Unicode(),
        config=True,
        help="""User names allowed to log in (after normalisation). Empty: everyone the
        authenticator accepts.""",
    )
    admin_users = Set(
        Unicode(), config=True, help="User names made administrators when they log in."
    )

    def normalize_username(self, name: str) -> str:
        """The canonical form of a typed name (gilhub's names are lowercase)."""
        return name.strip().lower()

    def validate_username(self, name: str) -> bool:
        return is_valid_username(name)

    def check_allowed(self, name: str) -> bool:
        return not self.allowed_users or name in self.allowed_users or name in self.admin_users

    def is_admin(self, name: str) -> bool:
        return name in self.admin_users

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        """The user name if ``data`` (``username``, ``password``) proves who this is.

        Raise :class:`AuthenticatorUnavailable` when it cannot be decided now.
        """
        raise NotImplementedError

    async def get_authenticated_user(self, handler: Any, data: dict[str, str]) -> str | None:
        """Normalise and validate the name, authenticate, then check it is allowed."""
        name = self.normalize_username(data.get("username", ""))
        if not self.validate_username(name):
            return None
        authenticated = await self.authenticate(handler, {**data, "username": name})
        if authenticated is None:
            return None
        authenticated = self.normalize_username(authenticated)
        if not self.validate_username(authenticated) or not self.check_allowed(authenticated):
            self.log.warning("%s authenticated but is not allowed to log in", authenticated)
            return None
        return authenticated


class PasswordAuthenticator(Authenticator):
    """gilhub's own accounts: argon2 password hashes in the hub's database."""

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name, password = data["username"], data.get("password", "")
        if await self.hub.accounts.verify_password(name, password):
            return name
        return None


class AuthenticatorType(Type):
    """A ``Type`` trait that also takes a short name from :data:`ENTRY_POINT_GROUP`."""

    def validate(self, obj: Any, value: Any) -> Any:
        if isinstance(value, str):
            found = entry_points(group=ENTRY_POINT_GROUP, name=value)
            if found:
                value = next(iter(found)).load()
        return super().validate(obj, value)
