"""The hub's view of every user server: start, watch, stop, re-adopt after a restart.

The :class:`ServerManager` does everything that does not depend on *where* a
server runs; a :class:`~gilhub.spawner.base.Spawner` runs the process.

Restart safety: each server's token is ``HMAC(hub secret, user name, nonce)``.
The ``servers`` table keeps the nonce (never the token), the token's sha256,
the port and the spawner's state (pid, process start time), so a restarted hub
recomputes the token and re-adopts every server whose process is alive and
answers with that token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int
from traitlets.config import LoggingConfigurable

from gilhub.db.outage import reason
from gilhub.spawner.base import Spawner, user_url
from gilhub.users import User

STOPPED, STARTING, RUNNING, STOPPING = "stopped", "starting", "running", "stopping"


class SpawnFailed(RuntimeError):
    """The server could not be started; the message is shown to its user."""


@dataclass
class ServerStatus:
    state: str
    url: str
    started: datetime | None = None
    last_activity: datetime | None = None
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Upstream:
    """Where the proxy reaches a server, and the token it adds to each request."""

    host: str
    port: int
    token: str

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Server:
    """One user's server as the hub sees it (in memory; the table mirrors it)."""

    def __init__(self, user: User, spawner: Spawner, url: str) -> None:
        self.user = user
        self.spawner = spawner
        self.url = url
        self.state = STOPPED
        self.started: datetime | None = None
        self.last_activity: datetime | None = None
        self.activity_saved = 0.0
        self.error: str | None = None
        self.log_tail: list[str] = []
        self.upstream: Upstream | None = None
        self.nonce: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def emit(self, progress: int, message: str, *, ready: bool = False, failed: bool = False):
        self.events.append(_event(self.url, progress, message, ready=ready, failed=failed))
        self.changed.set()
        self.changed = asyncio.Event()

    def status(self) -> ServerStatus:
        return ServerStatus(
            self.state, self.url, self.started, self.last_activity, self.error, self.log_tail
        )


class ServerManager(LoggingConfigurable):
    """Starts, watches, culls and stops the users' servers."""

    hub = AnyTrait(help="The GilHub application (db, db_url, secret, data_dir, base_url).")

    poll_interval = Float(
        2.0, config=True, help="Seconds between checks that running servers are still alive."
    )
    ready_poll_interval = Float(
        0.05, config=True, help="Seconds between readiness checks of a starting server."
    )
    shutdown_wait = Float(
        5.0,
        config=True,
        help="Seconds a server gets to exit after its REST shutdown before it is terminated.",
    )
    cull_idle_timeout = Int(
        0, config=True, help="Stop servers without proxied activity for this many seconds (0: off)."
    )
    activity_resolution = Float(
        30.0,
        config=True,
        help="Seconds between writes of a server's last activity to the database.",
    )
    cleanup_servers = Bool(
        False, config=True, help="Stop every user server when the hub exits (default: keep them)."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._servers: dict[str, _Server] = {}
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- what the rest of the hub calls ------------------------------------------

    async def restore(self) -> None:
        """At hub start: re-adopt recorded servers that are alive and answering."""
        async with self.hub.db.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT u.id, u.name, u.is_admin, u.db_role, s.state, s.host, s.port,"
                        " s.token_hash, s.token_nonce, s.spawner_state, s.started,"
                        " s.last_activity FROM servers s JOIN users u ON u.id = s.user_id"
                    )
                )
            ).all()
        await asyncio.gather(*(self._readopt(row) for row in rows))
        self._ensure_poller()

    async def shutdown(self) -> None:
        """At hub exit: stop watching; user servers keep running unless ``cleanup_servers``."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        try:
            await self._save_activity(force=True)
        except SQLAlchemyError as error:  # the database is gone: the servers still stop
            self.hub.report_database_error(error, "saving the servers' activity failed")
        if self.cleanup_servers:
            await asyncio.gather(*(self.stop(s.user) for s in list(self._servers.values())))
        for server in self._servers.values():
            if server.task is not None and not server.task.done():
                server.task.cancel()

    async def start(self, user: User) -> None:
        """Begin starting ``user``'s server in the background; return at once."""
        server = self._server_for(user)
        if server.state in (STARTING, RUNNING):
            return
        previous = server.task
        server.state, server.started, server.last_activity = STARTING, _now(), _now()
        server.error, server.log_tail, server.events = None, [], []
        server.task = asyncio.create_task(self._spawn(server, previous))
        self._ensure_poller()

    async def stop(self, user: User) -> None:
        """Stop ``user``'s server and wait until it is gone."""
        server = self._servers.get(user.name)
        if server is None or server.state == STOPPED:
            return
        if server.state != STOPPING:
            previous = server.task
            server.state = STOPPING
            server.task = asyncio.create_task(self._shutdown_server(server, previous))
        await asyncio.shield(server.task)

    def status(self, user_name: str) -> ServerStatus:
        server = self._servers.get(user_name)
        if server is None:
            return ServerStatus(STOPPED, self._user_url(user_name))
        return server.status()

    def upstream(self, user_name: str) -> Upstream | None:
        server = self._servers.get(user_name)
        if server is None or server.state != RUNNING:
            return None
        return server.upstream

    def record_activity(self, user_name: str) -> None:
        """Note proxied traffic (in memory; the poll loop writes it out, throttled)."""
        server = self._servers.get(user_name)
        if server is not None and server.state == RUNNING:
            server.last_activity = _now()

    async def progress(self, user_name: str) -> AsyncIterator[dict[str, Any]]:
        """JupyterHub-shaped spawn progress events, ending with a ready or failed one."""
        server = self._servers.get(user_name)
        sent = 0
        while True:
            if server is None:
                yield self._not_running_event(user_name)
                return
            changed = server.changed
            while sent < len(server.events):
                event = server.events[sent]
                sent += 1
                yield event
                if event["ready"] or event["failed"]:
                    return
            if server.state == RUNNING:  # e.g. re-adopted: no events of its start
                yield _event(server.url, 100, "Server ready", ready=True)
                return
            if server.state in (STOPPED, STOPPING):
                yield self._not_running_event(user_name)
                return
            await changed.wait()

    # -- starting ------------------------------------------------------------------

    async def _spawn(self, server: _Server, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await previous
        timeout = server.spawner.start_timeout
        try:
            await asyncio.wait_for(self._launch(server), timeout)
        except asyncio.TimeoutError:
            await self._fail(server, f"The server did not answer within {timeout:g} seconds.")
        except SpawnFailed as failure:
            await self._fail(server, str(failure))
        except Exception as error:
            name = server.user.name
            self.hub.report_database_error(error, f"starting the server of {name} failed")
            await self._fail(server, f"The server could not be started: {reason(error)}")

    async def _launch(self, server: _Server) -> None:
        spawner, name = server.spawner, server.user.name
        server.emit(10, "Preparing your database access")
        spawner.db_url = await self._user_database_url(server.user)
        server.nonce = secrets.token_hex(16)
        spawner.token = self._server_token(name, server.nonce)
        server.emit(30, "Starting your server")
        while True:
            host, port = await spawner.start()
            server.upstream = Upstream(host, port, spawner.token)
            await self._save_row(server)
            server.emit(50, "Waiting for your server to answer")
            exit_code = await self._wait_ready(server)
            if exit_code is None:
                break
            if not spawner.retry_start():
                raise SpawnFailed(f"The server exited with code {exit_code} before it answered.")
            server.emit(50, "The port was taken; starting again on another one")
        server.state = RUNNING
        await self._save_row(server)
        self.log.info("server of %s is ready on port %s", name, server.upstream.port)
        server.emit(100, "Server ready", ready=True)

    async def _wait_ready(self, server: _Server) -> int | None:
        """``None`` once the server answers, or its exit code if it died first."""
        while True:
            exit_code = await server.spawner.poll()
            if exit_code is not None:
                return exit_code
            if await self._answers(server, "api"):
                return None
            await asyncio.sleep(self.ready_poll_interval)

    async def _answers(self, server: _Server, path: str) -> bool:
        """Does the server answer ``GET path`` (relative to its base URL) with 200?"""
        request = self._server_request(server, path, "GET")
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError, StreamClosedError, asyncio.TimeoutError):
            return False
        return response.code == 200

    def _server_request(self, server: _Server, path: str, method: str) -> HTTPRequest:
        assert server.upstream is not None
        return HTTPRequest(
            server.upstream.url(server.spawner.base_url + path),
            method=method,
            headers={"Authorization": f"token {server.upstream.token}"},
            body=b"" if method == "POST" else None,
            connect_timeout=1.0,
            request_timeout=2.0,
        )

    async def _fail(self, server: _Server, message: str) -> None:
        self.log.warning("server of %s failed: %s", server.user.name, message)
        server.log_tail = server.spawner.log_tail()
        await self._end_process(server)
        server.error = message
        server.emit(100, message, failed=True)

    async def _user_database_url(self, user: User) -> str:
        """The user's own database role, with a password fresh for this start."""
        from gilhub.contents import roles

        role = await roles.ensure_user_role(self.hub.db, user.name)
        password = await roles.issue_role_password(self.hub.db, role)
        url = roles.user_database_url(self.hub.db_url, role, password)
        return url.render_as_string(hide_password=False)

    def _server_token(self, user_name: str, nonce: str) -> str:
        message = f"{user_name}\0{nonce}".encode()
        return hmac.new(self.hub.secret, message, hashlib.sha256).hexdigest()

    # -- stopping ------------------------------------------------------------------

    async def _shutdown_server(self, server: _Server, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await previous
        if server.upstream is not None and await self._request_shutdown(server):
            await self._wait_exit(server, self.shutdown_wait)
        await self._end_process(server)
        server.events = []
        self.log.info("server of %s stopped", server.user.name)

    async def _request_shutdown(self, server: _Server) -> bool:
        request = self._server_request(server, "api/shutdown", "POST")
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError, StreamClosedError, asyncio.TimeoutError):
            return False
        return response.code < 300

    async def _wait_exit(self, server: _Server, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Polled: an adopted server is not our child, so there is nothing to await.
        while await server.spawner.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    async def _end_process(self, server: _Server) -> None:
        """Terminate what is left of the process, forget the server (row included)."""
        try:
            await server.spawner.stop()
        finally:
            try:
                await self._delete_row(server)
            finally:
                server.state, server.upstream, server.nonce = STOPPED, None, None

    # -- watching ------------------------------------------------------------------

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._poll_once()
            except Exception as error:
                self.hub.report_database_error(error, "checking the user servers failed")

    async def _poll_once(self) -> None:
        for server in list(self._servers.values()):
            if server.state != RUNNING:
                continue
            exit_code = await server.spawner.poll()
            if exit_code is not None:
                await self._died(server, exit_code)
            elif self._is_idle(server):
                self.log.info("stopping the idle server of %s", server.user.name)
                self._in_background(self.stop(server.user))
        await self._save_activity()

    async def _died(self, server: _Server, exit_code: int) -> None:
        """The process ended by itself: shut down from inside (exit 0) or failed."""
        await self._end_process(server)
        server.events = []
        if exit_code == 0:  # JupyterLab's File > Shut Down, or the server's own culler
            self.log.info("server of %s was shut down from inside", server.user.name)
            server.emit(100, "Your server was shut down.")
            return
        self.log.warning("server of %s exited (code %s)", server.user.name, exit_code)
        server.log_tail = server.spawner.log_tail()
        server.error = f"Your server stopped unexpectedly (exit code {exit_code})."
        server.emit(100, server.error, failed=True)

    def _is_idle(self, server: _Server) -> bool:
        if not self.cull_idle_timeout or server.last_activity is None:
            return False
        idle = (_now() - server.last_activity).total_seconds()
        return idle > self.cull_idle_timeout

    def _in_background(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- adopting after a restart -----------------------------------------------------

    async def _readopt(self, row) -> None:
        user = User(id=row.id, name=row.name, is_admin=row.is_admin, db_role=row.db_role)
        server = self._server_for(user)
        server.spawner.load_state(row.spawner_state or {})
        token = self._server_token(user.name, row.token_nonce or "")
        server.spawner.token = token
        server.nonce = row.token_nonce
        server.upstream = Upstream(row.host, row.port or 0, token)
        server.started, server.last_activity = row.started, row.last_activity
        token_matches = hmac.compare_digest(_sha256(token), row.token_hash or "")
        alive = token_matches and await server.spawner.poll() is None
        if alive and await self._answers(server, "api/status"):
            server.state = RUNNING
            server.activity_saved = time.monotonic()
            if row.state != RUNNING:
                await self._save_row(server)
            self.log.info("re-adopted the running server of %s", user.name)
            return
        self.log.info("forgetting the recorded server of %s: not answering", user.name)
        await self._end_process(server)

    # -- the servers table ---------------------------------------------------------

    async def _save_row(self, server: _Server) -> None:
        assert server.upstream is not None
        values = {
            "user_id": server.user.id,
            "state": server.state,
            "host": server.upstream.host,
            "port": server.upstream.port,
            "pid": server.spawner.get_state().get("pid"),
            "token_hash": _sha256(server.upstream.token),
            "nonce": server.nonce,
            "spawner_state": json.dumps(server.spawner.get_state()),
            "started": server.started,
        }
        async with self.hub.db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO servers (user_id, state, host, port, pid, token_hash,"
                    " token_nonce, spawner_state, started, last_activity)"
                    " VALUES (:user_id, :state, :host, :port, :pid, :token_hash, :nonce,"
                    " CAST(:spawner_state AS jsonb), :started, :started)"
                    " ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state,"
                    " host = EXCLUDED.host, port = EXCLUDED.port, pid = EXCLUDED.pid,"
                    " token_hash = EXCLUDED.token_hash, token_nonce = EXCLUDED.token_nonce,"
                    " spawner_state = EXCLUDED.spawner_state, started = EXCLUDED.started"
                ),
                values,
            )

    async def _delete_row(self, server: _Server) -> None:
        async with self.hub.db.begin() as conn:
            await conn.execute(
                text("DELETE FROM servers WHERE user_id = :user_id"), {"user_id": server.user.id}
            )

    async def _save_activity(self, *, force: bool = False) -> None:
        """Write last-activity times that changed, at most once per ``activity_resolution``."""
        now = time.monotonic()
        due = [
            server
            for server in self._servers.values()
            if server.state == RUNNING
            and server.last_activity is not None
            and (force or now - server.activity_saved >= self.activity_resolution)
        ]
        if not due:
            return
        async with self.hub.db.begin() as conn:
            for server in due:
                values = {"user_id": server.user.id, "when": server.last_activity}
                await conn.execute(
                    text("UPDATE servers SET last_activity = :when WHERE user_id = :user_id"),
                    values,
                )
                await conn.execute(
                    text(
                        "UPDATE users SET last_activity = :when WHERE id = :user_id"
                        " AND (last_activity IS NULL OR last_activity < :when)"
                    ),
                    values,
                )
                server.activity_saved = now

    # -- helpers -------------------------------------------------------------------

    def _server_for(self, user: User) -> _Server:
        server = self._servers.get(user.name)
        if server is None or server.user.id != user.id:
            spawner = self.hub.spawner_class(hub=self.hub, user=user, parent=self)
            server = _Server(user, spawner, self._user_url(user.name))
            self._servers[user.name] = server
        return server

    def _user_url(self, user_name: str) -> str:
        return user_url(self.hub, user_name)

    def _not_running_event(self, user_name: str) -> dict[str, Any]:
        server = self._servers.get(user_name)
        message = (server.error if server else None) or "The server is not running."
        return _event(self._user_url(user_name), 100, message, failed=True)


def _event(
    url: str, progress: int, message: str, *, ready: bool = False, failed: bool = False
) -> dict[str, Any]:
    """A spawn progress event, shaped like JupyterHub's."""
    return {"progress": progress, "message": message, "ready": ready, "failed": failed, "url": url}


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
