"""The hub's resolver answers numeric addresses without a thread hop."""

from __future__ import annotations

import asyncio
import socket

from tornado.netutil import Resolver

from gilhub.resolver import NumericAddressResolver


async def test_numeric_addresses_are_answered_without_getaddrinfo(monkeypatch):
    loop = asyncio.get_running_loop()
    looked_up = []
    getaddrinfo = loop.getaddrinfo

    async def counting_getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return await getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting_getaddrinfo)
    resolver = NumericAddressResolver()
    assert await resolver.resolve("127.0.0.1", 8888) == [(socket.AF_INET, ("127.0.0.1", 8888))]
    assert await resolver.resolve("::1", 8888) == [(socket.AF_INET6, ("::1", 8888, 0, 0))]
    assert looked_up == []
    assert await resolver.resolve("localhost", 8888)  # a name is looked up as before
    assert looked_up == ["localhost"]


async def test_the_hub_makes_it_tornados_resolver(hub):
    assert Resolver.configured_class() is NumericAddressResolver
