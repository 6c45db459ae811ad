"""Name resolution for the hub's own connections (to user servers, to itself).

Tornado's default resolver sends every host through ``getaddrinfo`` on a worker thread, even
``127.0.0.1``: a thread hop and a future per new connection, which the hub makes for each
readiness check of a starting server and each new upstream connection of the proxy. Servers
are almost always addressed by number, so numbers are answered at once.
"""

from __future__ import annotations

import socket

from tornado.netutil import DefaultLoopResolver, Resolver, is_valid_ip


class NumericAddressResolver(DefaultLoopResolver):
    """Answers numeric addresses itself; looks names up as Tornado's default does."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, tuple]]:
        if is_valid_ip(host):
            numeric_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            if family in (socket.AF_UNSPEC, numeric_family):
                address = (host, port, 0, 0) if numeric_family == socket.AF_INET6 else (host, port)
                return [(numeric_family, address)]
        return await super().resolve(host, port, family)


def use_numeric_address_resolver() -> None:
    """Make :class:`NumericAddressResolver` Tornado's resolver in this process."""
    Resolver.configure(NumericAddressResolver)
