"""A server started on another machine tells the hub where it listens.

A batch job's server learns its node and port only when it runs there, so the
Slurm spawner gives it ``GILHUB_ADDRESS_URL`` (the hub's
``/hub/api/users/NAME/server/address``) and the server, once jupyter_server has
picked its port, posts ``{"host", "port"}`` there with its own token. The hub
takes the report only from that starting server's token.

``python -m gilhub.serverext.address`` prints the address this machine reaches
the hub from (the source address of the route to it): the address the server
binds, so that the hub can reach it back.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

ADDRESS_URL_VARIABLE = "GILHUB_ADDRESS_URL"
#: Attempts (a second apart, then longer) before the server gives up reporting.
REPORT_ATTEMPTS = 10


def route_address(url: str) -> str:
    """The local address of the route to ``url``'s host (no packet is sent)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return probe.getsockname()[0]


async def report_address(serverapp: Any) -> None:
    """Post the server's address to the hub, retrying while the hub does not answer."""
    url = os.environ[ADDRESS_URL_VARIABLE]
    body = json.dumps({"host": serverapp.ip, "port": serverapp.port})
    headers = {
        "Authorization": f"token {serverapp.identity_provider.token}",
        "Content-Type": "application/json",
    }
    for attempt in range(1, REPORT_ATTEMPTS + 1):
        try:
            await AsyncHTTPClient().fetch(url, method="POST", body=body, headers=headers)
        except (OSError, HTTPClientError) as error:
            serverapp.log.warning("gilhub: reporting the address to the hub failed: %s", error)
            if isinstance(error, HTTPClientError) and error.code == 403:
                break  # refused (another start replaced this one): no point retrying
            await asyncio.sleep(min(attempt, 5))
            continue
        serverapp.log.info("gilhub: reported %s:%s to the hub", serverapp.ip, serverapp.port)
        return
    serverapp.log.critical("gilhub: the hub did not take this server's address; stopping")
    serverapp.stop()


if __name__ == "__main__":
    print(route_address(os.environ[ADDRESS_URL_VARIABLE]))
