"""The blocking side of :class:`gilhub.auth.ldap.LDAPAuthenticator`: one login's
conversation with the directory through ldap3, run in a worker thread.

A module of its own so that ldap3 (a fifth of a second to import) is loaded at
the first directory login, not every time ``gilhub`` starts.
"""

from __future__ import annotations

import math
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


class DirectoryDown(Exception):
    """No directory server answered."""


class Directory:
    """The directory as ``settings`` (an LDAPAuthenticator) describe it."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.log = settings.log

    def check(self, name: str, password: str) -> bool:
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
            validate=ssl.CERT_REQUIRED, ca_certs_file=self.settings.ca_file or None, version=None
        )
        servers = [
            ldap3.Server(
                address,
                use_ssl=address.lower().startswith("ldaps://"),
                tls=tls,
                connect_timeout=self.settings.timeout,
                get_info=ldap3.NONE,
            )
            for address in self.settings.server_addresses
        ]
        return ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=True)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        connection = ldap3.Connection(
            self._server_pool(),
            user=user,
            password=password,
            receive_timeout=math.ceil(self.settings.timeout),  # ldap3 packs it as an integer
            raise_exceptions=False,
        )
        connection.open()
        if self.settings.start_tls:
            connection.start_tls()
        return connection

    def _service_connection(self) -> ldap3.Connection:
        """Bound as the service account (anonymous without one), for searches."""
        if not self.settings.search_bind_dn:
            return self._connection(None, None)
        connection = self._connection(
            self.settings.search_bind_dn, self.settings.service_password()
        )
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
        if self.settings.bind_dn_template:
            return self.settings.bind_dn_template.format(username=escape_rdn(name))
        service.search(
            self.settings.user_search_base,
            self.settings.user_search_filter.format(username=escape_filter_chars(name)),
            search_scope=ldap3.SUBTREE,
            attributes=[],
            size_limit=2,
        )
        if len(service.entries) != 1:
            self.log.info("LDAP: %d entries for %s; need exactly one", len(service.entries), name)
            return None
        return service.entries[0].entry_dn

    def _in_allowed_group(self, service: ldap3.Connection, user_dn: str, name: str) -> bool:
        if not self.settings.allowed_groups:
            return True
        member_filter = self.settings.group_member_filter.format(
            userdn=escape_filter_chars(user_dn), username=escape_filter_chars(name)
        )
        for group in self.settings.allowed_groups:
            service.search(group, member_filter, search_scope=ldap3.BASE, attributes=[])
            if service.entries:
                return True
        return False
