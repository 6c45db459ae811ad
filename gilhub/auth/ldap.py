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

ldap3 blocks, so every directory conversation (:mod:`gilhub.auth.directory`,
imported at the first directory login) runs in a worker thread, with a
timeout. When the directory does not answer, the login page says so, and
local accounts with a password (by default administrators only; see
``local_accounts``) can still log in with it, so that an administrator
is never locked out of the hub by the directory.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from traitlets import Bool, Enum, Float, List, Unicode

from gilhub.auth.authenticator import Authenticator, AuthenticatorUnavailable

DIRECTORY_DOWN = "The directory server did not answer; try again in a moment."
BIND_PASSWORD_VARIABLE = "GILHUB_LDAP_BIND_PASSWORD"  # noqa: S105 (a variable's name)


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

    def service_password(self) -> str:
        return self.search_bind_password or os.environ.get(BIND_PASSWORD_VARIABLE, "")

    # -- the hub's side ---------------------------------------------------------------

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name, password = data["username"], data.get("password", "")
        if not password:  # an empty password would be an anonymous bind: accepted by LDAP
            return None
        if await self._local_password_matches(name, password):
            return name
        from gilhub.auth.directory import Directory, DirectoryDown  # ldap3: only when used

        try:
            accepted = await asyncio.wait_for(
                asyncio.to_thread(Directory(self).check, name, password), self.timeout
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
