"""Logging in with a directory (OpenLDAP, Active Directory, FreeIPA) through ldap3.

Two ways to find the person's entry, as JupyterHub's ldapauthenticator has:

- ``bind_dn_template``, e.g. ``uid={username},ou=people,dc=example,dc=org``:
  bind directly as that entry with the typed password;
- search then bind: bind as a service account (``search_bind_dn`` and its
  password, from the configuration or the environment variable
  ``GILHUB_LDAP_BIND_PASSWORD``), search ``user_search_base`` with
  ``user_search_filter``, then bind as the single entry found.

``allowed_groups`` (group DNs) then restricts who may log in: membership is
checked by searching each group for the person (``member``, ``uniqueMember``
or ``memberUid``). People are created in gilhub at their first login, without
a local password.

ldap3 blocks, so every directory conversation runs in a worker thread, with a
timeout. When the directory does not answer, the login page says so, and
local accounts with a password (by default administrators only; see
``local_accounts``) can still log in with it, so that an administrator
is never locked out of the hub by the directory.
"""

from __future__ import annotations

import asyncio
import math
import os
import ssl
from typing import Any

import ldap3
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPServerPoolExhaustedError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from traitlets import Bool, Enum, Float, List, Unicode

from gilhub.auth.authenticator import Authenticator, AuthenticatorUnavailable

DIRECTORY_DOWN = "The directory server did not answer; try again in a moment."
BIND_PASSWORD_VARIABLE = "GILHUB_LDAP_BIND_PASSWORD"  # noqa: S105 (a variable's name)


class DirectoryDown(Exception):
    """Raised in the worker thread when no directory server answers."""


class LDAPAuthenticator(Authenticator):
    """Authenticate against an LDAP directory (see the module docstring)."""

    server_addresses = List(
        Unicode(),
        config=True,
        help="""Directory servers, tried in order: ldap://host[:389] or ldaps://host[:636]
        (ldaps: TLS from the first byte).""",
    )
    start_tls = Bool(False, config=True, help="Upgrade ldap:// connections with StartTLS.")
    ca_file = Unicode(
        "", config=True, help="CA certificates (PEM) that sign the servers' certificates."
    )
    bind_dn_template = Unicode(
        "",
        config=True,
        help="""DN to bind as, with {username}, e.g. uid={username},ou=people,dc=example,dc=org.
        Empty: search then bind (user_search_base, search_bind_dn).""",
    )
    search_bind_dn = Unicode(
        "", config=True, help="Service account DN for searches (empty: anonymous)."
    )
    search_bind_password = Unicode(
        "",
        config=True,
        help=f"The service account's password (default: ${BIND_PASSWORD_VARIABLE}).",
    )
    user_search_base = Unicode("", config=True, help="Where people's entries are searched.")
    user_search_filter = Unicode(
        "(uid={username})", config=True, help="Filter that finds a person by {username}."
    )
    allowed_groups = List(
        Unicode(), config=True, help="Group DNs whose members may log in (empty: anyone)."
    )
    group_member_filter = Unicode(
        "(|(member={userdn})(uniqueMember={userdn})(memberUid={username}))",
        config=True,
        help="Filter (on a group entry) that matches when the person is a member.",
    )
    timeout = Float(10.0, config=True, help="Seconds one login may wait for the directory.")
    local_accounts = Enum(
        ["admins", "all", "none"],
        "admins",
        config=True,
        help="""Local accounts with a gilhub password that may log in with it instead of the
        directory (also while the directory is down): administrators, everyone, or nobody.""",
    )

    # -- the hub's side ---------------------------------------------------------------

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name, password = data["username"], data.get("password", "")
        if not password:  # an empty password would be an anonymous bind: accepted by LDAP
            return None
        if await self._local_password_matches(name, password):
            return name
        try:
            accepted = await asyncio.wait_for(
                asyncio.to_thread(self.check_directory, name, password), self.timeout
            )
        except (asyncio.TimeoutError, DirectoryDown) as error:
            self.log.warning("LDAP login of %s: the directory did not answer (%s)", name, error)
            raise AuthenticatorUnavailable(DIRECTORY_DOWN) from error
        return name if accepted else None

    async def _local_password_matches(self, name: str, password: str) -> bool:
        if self.local_accounts == "none":
            return False
        accounts = self.hub.accounts
        if not await accounts.has_password(name):
            return False
        if self.local_accounts == "admins" and not (await accounts.get(name)).is_admin:
            return False
        return await accounts.verify_password(name, password)

    # -- the worker thread's side -------------------------------------------------------

    def check_directory(self, name: str, password: str) -> bool:
        """Bind as the person and check the groups (blocking; run in a thread)."""
        try:
            with self._service_connection() as service:
                user_dn = self._user_dn(service, name)
                if user_dn is None:
                    return False
                if not self._bind(user_dn, password):
                    self.log.info("LDAP login of %s refused: wrong password", name)
                    return False
                if not self._in_allowed_group(service, user_dn, name):
                    self.log.info("LDAP login of %s refused: in none of allowed_groups", name)
                    return False
                return True
        except (
            LDAPCommunicationError,
            LDAPResponseTimeoutError,
            LDAPServerPoolExhaustedError,
            LDAPStartTLSError,
        ) as error:
            raise DirectoryDown(str(error)) from error
        except LDAPException as error:
            self.log.warning("LDAP login of %s failed: %s", name, error)
            return False

    def _server_pool(self) -> ldap3.ServerPool:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file or None, version=None
        )
        servers = [
            ldap3.Server(
                address,
                use_ssl=address.lower().startswith("ldaps://"),
                tls=tls,
                connect_timeout=self.timeout,
                get_info=ldap3.NONE,
            )
            for address in self.server_addresses
        ]
        return ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=True)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        connection = ldap3.Connection(
            self._server_pool(),
            user=user,
            password=password,
            receive_timeout=math.ceil(self.timeout),  # ldap3 packs it as an integer
            raise_exceptions=False,
        )
        connection.open()
        if self.start_tls:
            connection.start_tls()
        return connection

    def _service_connection(self) -> ldap3.Connection:
        """Bound as the service account (anonymous without one), for searches."""
        if not self.search_bind_dn:
            return self._connection(None, None)
        password = self.search_bind_password or os.environ.get(BIND_PASSWORD_VARIABLE, "")
        connection = self._connection(self.search_bind_dn, password)
        if not connection.bind():
            raise LDAPException(f"the service account cannot bind: {connection.result}")
        return connection

    def _bind(self, user_dn: str, password: str) -> bool:
        connection = self._connection(user_dn, password)
        try:
            return bool(connection.bind())
        finally:
            connection.unbind()

    def _user_dn(self, service: ldap3.Connection, name: str) -> str | None:
        if self.bind_dn_template:
            return self.bind_dn_template.format(username=escape_rdn(name))
        service.search(
            self.user_search_base,
            self.user_search_filter.format(username=escape_filter_chars(name)),
            search_scope=ldap3.SUBTREE,
            attributes=[],
            size_limit=2,
        )
        if len(service.entries) != 1:
            self.log.info("LDAP: %d entries for %s; need exactly one", len(service.entries), name)
            return None
        return service.entries[0].entry_dn

    def _in_allowed_group(self, service: ldap3.Connection, user_dn: str, name: str) -> bool:
        if not self.allowed_groups:
            return True
        member_filter = self.group_member_filter.format(
            userdn=escape_filter_chars(user_dn), username=escape_filter_chars(name)
        )
        for group in self.allowed_groups:
            service.search(group, member_filter, search_scope=ldap3.BASE, attributes=[])
            if service.entries:
                return True
        return False
