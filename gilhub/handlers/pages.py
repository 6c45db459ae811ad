"""The dashboard and the pages around starting and stopping a user's server."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from tornado.web import HTTPError

from gilhub.accounts import AccountError
from gilhub.auth.redirects import safe_next
from gilhub.handlers.base import BaseHandler, login_required
from gilhub.servers import ServerState, ServerStatus
from gilhub.users import INTERFACES, User

#: Seconds after which the spawn page calls a start slow and links to the server's log.
SLOW_START_SECONDS = 15
#: Lines of a server's log its log page shows.
SPAWN_LOG_LINES = 200


class RootHandler(BaseHandler):
    async def get(self) -> None:
        self.redirect(self.hub.hub_prefix + "home")


class HomeHandler(BaseHandler):
    """The front page: my server (start, stop, open, its state, the interface it opens in)."""

    @login_required
    async def get(self) -> None:
        user = self.current_user
        assert user is not None
        self.render_template(
            "home.html",
            server=self.hub.servers.status(user.name),
            interfaces=INTERFACES,
            interface=self.landing_path_of(user),
            notice=self.take_shown().get("notice", ""),
        )


class InterfaceHandler(BaseHandler):
    """The home page's choice of interface (JupyterLab or Notebook), kept per person."""

    @login_required
    async def post(self) -> None:
        user = self.current_user
        assert user is not None
        interface = self.get_body_argument("interface", "")
        try:
            await self.hub.accounts.set_interface(user, interface)
        except AccountError as error:
            raise HTTPError(400, str(error)) from error
        notice = f"Your server opens in {INTERFACES[interface]}."
        self.redirect_after_post(self.hub.hub_prefix + "home", notice=notice)


class ServerPageHandler(BaseHandler):
    """Pages about one user's server, reachable by that user and by admins.

    ``next=`` says where to go once the server runs; by default its landing page.
    """

    def next_url(self, user: User) -> str:
        landing = self.hub.servers.status(user.name).url + self.landing_path_of(user)
        return safe_next(self.get_argument("next", None), landing)

    def next_query(self, user: User) -> str:
        return urlencode({"next": self.next_url(user)})

    def pending_url(self, user: User) -> str:
        return f"{self.hub.hub_prefix}spawn-pending/{user.name}?{self.next_query(user)}"

    def render_not_running(self, user: User, status: ServerStatus) -> None:
        """The server is not running (the last start's error, if any): offer to start it."""
        self.render_template(
            "spawn.html", owner=user, server=status, next_query=self.next_query(user)
        )


class SpawnHandler(ServerPageHandler):
    """``/hub/spawn`` and ``/hub/spawn/NAME`` (oneself, or anyone as an admin), as in
    JupyterHub: ``GET`` starts a stopped server and follows its start, ``POST`` starts it.

    After a failed start ``GET`` shows the error and a button instead of starting again,
    so that a link to a server that cannot start does not loop.
    """

    @login_required
    async def get(self, name: str | None = None) -> None:
        user = await self.permitted_user(name or self.current_user.name, "read:servers")  # type: ignore[union-attr]
        status = self.hub.servers.status(user.name)
        if status.state == ServerState.RUNNING:
            self.redirect(self.next_url(user))
        elif status.state == ServerState.STOPPED and status.error:
            self.render_not_running(user, status)
        else:
            self.require_scope("start:servers", user.name)
            await self.start_server(user)
            self.redirect(self.pending_url(user))

    @login_required
    async def post(self, name: str | None = None) -> None:
        user = await self.permitted_user(name or self.current_user.name, "start:servers")  # type: ignore[union-attr]
        await self.start_server(user)
        self.redirect(self.pending_url(user))


class SpawnPendingHandler(ServerPageHandler):
    """Progress while queued or starting (EventSource), or the error with the log's end."""

    @login_required
    async def get(self, name: str) -> None:
        user = await self.permitted_user(name, "read:servers")
        status = self.hub.servers.status(user.name)
        if status.state == ServerState.RUNNING:
            self.redirect(self.next_url(user))
        elif status.state.pending == "spawn":
            started = status.started or datetime.now(timezone.utc)
            self.render_template(
                "spawn_pending.html",
                owner=user,
                server=status,
                next_url=self.next_url(user),
                progress_url=f"{self.hub.hub_prefix}api/users/{user.name}/server/progress",
                elapsed=max(0, int((datetime.now(timezone.utc) - started).total_seconds())),
                slow_after=SLOW_START_SECONDS,
            )
        elif status.error:
            self.set_status(500)
            self.render_template(
                "spawn_failed.html",
                owner=user,
                server=status,
                next_query=self.next_query(user),
            )
        else:
            self.render_not_running(user, status)


class SpawnLogHandler(ServerPageHandler):
    """``/hub/spawn-log/NAME``: the end of a server's log (the spawn page links to it when a
    start is slow). Only for whoever may see that server: its owner, or an admin."""

    @login_required
    async def get(self, name: str) -> None:
        user = await self.permitted_user(name, "read:servers")
        self.render_template(
            "spawn_log.html",
            owner=user,
            server=self.hub.servers.status(user.name),
            lines=await self.hub.servers.log_tail(user.name, SPAWN_LOG_LINES),
        )


class StopHandler(ServerPageHandler):
    @login_required
    async def post(self, name: str) -> None:
        user = await self.permitted_user(name, "delete:servers")
        await self.hub.servers.stop(user)
        self.redirect(safe_next(self.get_argument("next", None), self.hub.hub_prefix + "home"))


class UserRedirectHandler(BaseHandler):
    """``/hub/user-redirect/PATH`` -> ``/user/ME/PATH``: links that work for everyone."""

    @login_required
    async def get(self, path: str) -> None:
        user = self.current_user
        assert user is not None
        raw_path = self.request.path.split("/user-redirect/", 1)[1]
        target = f"{self.hub.base_url}user/{user.name}/{raw_path.lstrip('/')}"
        if self.request.query:
            target += "?" + self.request.query
        self.redirect(safe_next(target, self.hub.hub_prefix + "home"))
