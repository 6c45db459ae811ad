"""gilhub's jupyter_server extension, enabled in every user server the hub starts.

It does what jupyter_server does not do by itself:

- **TCP_NODELAY on kernel WebSockets.** jupyter_server leaves Nagle's
  algorithm on, so a small kernel reply can wait for the peer's delayed ACK
  (about 40 ms on Linux): a cell's round trip takes ~48 ms instead of ~7 ms.
  The kernel WebSocket connection class configured in the server is wrapped
  in a subclass that sets the option when the socket opens.
- **The server token stays out of the browser.** JupyterLab copies the
  server's token into the page it serves. Behind gilhub the browser is
  authenticated by the hub, which adds the token to each request it forwards,
  so the token is removed from the page configuration once every extension
  has loaded.
- **A lost database, quietly.** The contents manager answers 503 while its
  database is down; every 503 gets ``Retry-After`` and the outage is logged
  once, not per request (:mod:`gilhub.serverext.outage`).
- **A way back to the hub.** With ``GILHUB_HUB_PREFIX`` set (the spawner sets
  it), JupyterLab's File menu offers "Hub Control Panel" and "Log Out", which
  lead to the hub's pages.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from tornado.ioloop import IOLoop

from gilhub.serverext import outage

_CONNECTION_CLASS_SETTING = "kernel_websocket_connection_class"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "gilhub.serverext"}]


def with_nodelay(connection_class: type) -> type:
    """A subclass of ``connection_class`` that disables Nagle's algorithm on connect."""

    class NoDelayKernelConnection(connection_class):  # type: ignore[misc, valid-type]
        def connect(self, *args: Any, **kwargs: Any) -> Any:
            handler = self.websocket_handler
            handler.set_nodelay(True)
            stream = handler.ws_connection.stream if handler.ws_connection else None
            if stream is not None and stream.socket is not None:
                value = stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                self.log.debug("gilhub: kernel websocket TCP_NODELAY=%d", value)
            return super().connect(*args, **kwargs)

    NoDelayKernelConnection.__qualname__ = f"NoDelay{connection_class.__name__}"
    return NoDelayKernelConnection


def _configure_pages(settings: dict[str, Any]) -> None:
    page_config = settings.setdefault("page_config_data", {})
    page_config["token"] = ""
    hub_prefix = os.environ.get("GILHUB_HUB_PREFIX")
    if hub_prefix:
        user = os.environ.get("GILHUB_USER", "")
        page_config.update(hubPrefix=hub_prefix, hubUser=user, hubHost="", hubServerName="")


def _load_jupyter_server_extension(serverapp: Any) -> None:
    settings = serverapp.web_app.settings
    configured = (
        settings.get(_CONNECTION_CLASS_SETTING) or serverapp.kernel_websocket_connection_class
    )
    settings[_CONNECTION_CLASS_SETTING] = with_nodelay(configured)
    outage.install(serverapp)
    # Runs once the loop starts, i.e. after JupyterLab has filled its page config.
    IOLoop.current().add_callback(_configure_pages, settings)
    serverapp.log.info("gilhub server extension loaded")
