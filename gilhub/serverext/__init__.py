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
- **Activity.** When the site enables it, ``{base}gilhub/activity`` records cell
  executions and notebook events for the activity narrative and answers with the
  questions to put (:mod:`gilhub.serverext.activity`).
- **Fonts in Notebook 7 after JupyterLab.** jupyter_server's static file routes share
  one cache keyed by file name, and JupyterLab's fonts have the same names as Notebook
  7's: the cache is keyed by route (:mod:`gilhub.serverext.static_files`).
- **A way back to the hub.** With ``GILHUB_HUB_PREFIX`` set (the spawner sets
  it), JupyterLab's File menu offers "Hub Control Panel" and "Log Out", which
  lead to the hub's pages. The server's own ``/logout`` (JupyterLab's second
  "Log Out", hidden by ``jupyter-settings/gilhub.json``) redirects to the hub's,
  as JupyterHub's single-user server does: logging out of one's server means
  logging out of the hub.
- **Its address, from a cluster node.** With ``GILHUB_ADDRESS_URL`` set (the Slurm
  spawner sets it), the server reports the address and port it listens on to the hub
  (:mod:`gilhub.serverext.address`).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from gilhub.serverext import activity, address, outage, static_files

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
    # Notebook 7 writes settings["token"] (a deprecated copy of the identity provider's
    # token, which alone checks requests) into its pages: the browser would see the
    # server's token and send it, and the hub would refuse it as a hub token.
    settings["token"] = ""
    hub_prefix = os.environ.get("GILHUB_HUB_PREFIX")
    if hub_prefix:
        user = os.environ.get("GILHUB_USER", "")
        page_config.update(hubPrefix=hub_prefix, hubUser=user, hubHost="", hubServerName="")


#: Front ends (JupyterLab extensions) that only work with their server extension, which
#: ``Spawner.server_extensions`` may turn off: nbdime's diff buttons would get 404s.
FRONT_ENDS_OF_SERVER_EXTENSIONS = {"nbdime": "nbdime-jupyterlab"}


def _hide_front_ends_without_their_server(serverapp: Any) -> None:
    """Turn off, in JupyterLab and Notebook 7 pages, the front ends whose server extension
    is off in this server (through jupyterlab_server's ``page_config_hook``)."""
    extensions = serverapp.extension_manager.extensions
    orphans = [
        front_end
        for server_side, front_end in FRONT_ENDS_OF_SERVER_EXTENSIONS.items()
        if server_side not in extensions or not extensions[server_side].enabled
    ]
    if not orphans:
        return
    settings = serverapp.web_app.settings
    previous = settings.get("page_config_hook")

    def without_orphans(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        # a list by now: jupyterlab_server hands the front end lists, not its dicts
        disabled = list(page_config.get("disabledExtensions") or [])
        page_config["disabledExtensions"] = disabled + [n for n in orphans if n not in disabled]
        return page_config

    settings["page_config_hook"] = without_orphans


class HubLogoutRedirect(RequestHandler):
    """``/user/NAME/logout`` → the hub's logout page (which ends the hub session)."""

    def get(self) -> None:
        self.redirect(url_path_join(self.settings["gilhub_hub_prefix"], "logout"))


def _add_hub_logout(serverapp: Any, hub_prefix: str) -> None:
    web_app = serverapp.web_app
    web_app.settings["gilhub_hub_prefix"] = hub_prefix
    # added host rules go before jupyter_server's own, so this /logout wins
    logout = url_path_join(web_app.settings["base_url"], "logout")
    web_app.add_handlers(".*$", [(logout, HubLogoutRedirect)])


def _load_jupyter_server_extension(serverapp: Any) -> None:
    settings = serverapp.web_app.settings
    configured = (
        settings.get(_CONNECTION_CLASS_SETTING) or serverapp.kernel_websocket_connection_class
    )
    settings[_CONNECTION_CLASS_SETTING] = with_nodelay(configured)
    outage.install(serverapp)
    static_files.install()
    activity.install(serverapp)
    _hide_front_ends_without_their_server(serverapp)
    # Runs once the loop starts, i.e. after JupyterLab has filled its page config.
    IOLoop.current().add_callback(_configure_pages, settings)
    hub_prefix = os.environ.get("GILHUB_HUB_PREFIX")
    if hub_prefix:
        _add_hub_logout(serverapp, hub_prefix)
    if os.environ.get(address.ADDRESS_URL_VARIABLE):
        # once the loop runs: jupyter_server has chosen its port by then
        IOLoop.current().add_callback(address.report_address, serverapp)
    serverapp.log.info("gilhub server extension loaded")
