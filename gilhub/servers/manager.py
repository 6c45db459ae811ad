"""The :class:`ServerManager`: start (through the spawn queue), watch, stop, re-adopt.

It does everything that does not depend on *where* a server runs; a
:class:`~gilhub.spawner.base.Spawner` runs it and says where it listens.

Restart safety: each server's token is ``HMAC(hub secret, user name, nonce)``.
The ``servers`` table keeps the nonce (never the token), the token's sha256,
the address and the spawner's opaque state (a local process's pid and start
time, a batch job's id), so a restarted hub recomputes the token and re-adopts
every server that its spawner finds alive and that answers with that token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, default, observe
from traitlets.config import LoggingConfigurable

from gilhub.db.outage import reason
from gilhub.servers import query
from gilhub.servers.models import (
    ACTIVE_STATES,
    AddressRefused,
    ServerState,
    ServerStatus,
    SpawnFailed,
    SpawnLimitReached,
    Upstream,
)
from gilhub.servers.queue import SpawnQueue
from gilhub.spawner.base import Spawner, user_url
from gilhub.users import User

ServiceT = TypeVar("ServiceT")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Server:
    """One user's server as the hub sees it (in memory; the table mirrors it)."""

    def __init__(self, user: User, spawner: Spawner, url: str) -> None:
        self.user = user
        self.spawner = spawner
        self.url = url
        self.state = ServerState.STOPPED
        self.started: datetime | None = None
        self.last_activity: datetime | None = None
        self.activity_saved = 0.0
        self.activity_written: datetime | None = None  # the last activity in the database
        self.error: str | None = None
        self.log_tail: list[str] = []
        self.upstream: Upstream | None = None
        self.nonce: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.announced_ahead: int | None = None

    def emit(self, progress: int, message: str, **flags: Any) -> None:
        self.events.append(_event(self.url, progress, message, **flags))
        self.wake()

    def wake(self) -> None:
        """Let progress streams look again (a new event, or the state changed)."""
        self.changed.set()
        self.changed = asyncio.Event()

    def status(self) -> ServerStatus:
        return ServerStatus(
            self.state,
            self.url,
            self.started,
            self.last_activity,
            self.error,
            self.log_tail,
            self.spawner.log_location() if self.error else None,
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
    concurrent_stop_limit = Int(
        config=True,
        help="""Servers stopped at the same moment when the hub exits with cleanup_servers
        (default: the size of the hub's database pool). Each stop ends with a database write:
        stopping hundreds at once exhausted the pool and crashed the hub's exit.""",
    )
    concurrent_spawn_limit = Int(
        config=True,
        help="""Servers that may be starting at the same moment (default: the number of CPUs,
        at least 2). Further starts wait in a first-come, first-served queue, and each one's
        start_timeout counts from the moment its own start begins.""",
    )
    spawn_queue_limit = Int(
        100,
        config=True,
        help="""Starts that may wait in the queue; beyond them a start is refused with HTTP 429
        ("try again in ..."). 0 gives JupyterHub's behaviour: 429 as soon as
        concurrent_spawn_limit starts are under way.""",
    )
    active_server_limit = Int(
        0,
        config=True,
        help="""Servers that may be running, starting or queued at once (0: no limit), as
        JupyterHub's; a start beyond it is refused with HTTP 429.""",
    )
    spawn_retry_after = Int(
        30, config=True, help="Seconds a client refused by a spawn limit is told to wait."
    )

    @default("concurrent_stop_limit")
    def _default_concurrent_stop_limit(self) -> int:
        return self.hub.db.pool.size()

    @default("concurrent_spawn_limit")
    def _default_concurrent_spawn_limit(self) -> int:
        return max(2, os.cpu_count() or 1)

    @observe("concurrent_spawn_limit")
    def _new_concurrent_spawn_limit(self, change: dict[str, Any]) -> None:
        if hasattr(self, "_queue"):
            self._queue.limit = max(1, change["new"])
            self._queue.admit()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._servers: dict[str, _Server] = {}
        self._poller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._queue = SpawnQueue(self.concurrent_spawn_limit, self._announce_queue)
        self._spawner_services: dict[type, Any] = {}

    # -- what the rest of the hub calls ------------------------------------------

    async def restore(self) -> None:
        """At hub start: re-adopt recorded servers that are alive and answering.

        Returns once the records are read; the servers are checked in the background
        (shown as starting meanwhile), so a restarted hub listens at once.
        """
        async with self.hub.db.connect() as conn:
            recorded = await query.recorded_servers(conn)
        for user, record in recorded:
            server = self._server_for(user)
            server.state = ServerState.STARTING
            server.started, server.last_activity = record.started, record.last_activity
            server.emit(50, "Reconnecting to the server after a hub restart", phase="waiting")
            server.task = self._in_background(self._readopt(server, record))
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
            await self._stop_all()
        for server in self._servers.values():
            if server.task is not None and not server.task.done():
                server.task.cancel()

    async def _stop_all(self) -> None:
        """Stop every server, ``concurrent_stop_limit`` at a time."""
        slots = asyncio.Semaphore(max(1, self.concurrent_stop_limit))

        async def stop(user: User) -> None:
            async with slots:
                await self.stop(user)

        await asyncio.gather(*(stop(server.user) for server in list(self._servers.values())))

    async def start(self, user: User) -> None:
        """Begin starting ``user``'s server in the background (queued behind other starts
        if ``concurrent_spawn_limit`` are under way); return at once.

        Raises :class:`SpawnLimitReached` when the queue or ``active_server_limit`` is full.
        """
        server = self._server_for(user)
        if server.state in (ServerState.QUEUED, ServerState.STARTING, ServerState.RUNNING):
            return
        self._check_limits()
        server.user = server.spawner.user = user  # as it is now (its chosen interface, …)
        previous = server.task
        server.state, server.started, server.last_activity = ServerState.QUEUED, _now(), _now()
        server.error, server.log_tail, server.events = None, [], []
        server.announced_ahead = None
        server.task = asyncio.create_task(self._spawn(server, previous))
        self._ensure_poller()

    async def stop(self, user: User) -> None:
        """Stop ``user``'s server and wait until it is gone."""
        server = self._servers.get(user.name)
        if server is None or server.state == ServerState.STOPPED:
            return
        if server.state != ServerState.STOPPING:
            previous = server.task
            server.state = ServerState.STOPPING
            server.task = asyncio.create_task(self._shutdown_server(server, previous))
        await asyncio.shield(server.task)

    def status(self, user_name: str) -> ServerStatus:
        server = self._servers.get(user_name)
        if server is None:
            return ServerStatus(ServerState.STOPPED, self._user_url(user_name))
        return server.status()

    async def log_tail(self, user_name: str, lines: int) -> list[str]:
        """The last ``lines`` of the output of ``user_name``'s server (its current or last
        start), read off the event loop; empty when the hub has not started it."""
        server = self._servers.get(user_name)
        if server is None:
            return []
        return await asyncio.to_thread(server.spawner.log_tail, lines)

    def upstream(self, user_name: str) -> Upstream | None:
        server = self._servers.get(user_name)
        if server is None or server.state != ServerState.RUNNING:
            return None
        return server.upstream

    def report_address(self, user_name: str, token: str, host: str, port: int) -> None:
        """A starting server says where it listens (its spawner asked it to).

        Raises :class:`AddressRefused` unless ``token`` is the token of ``user_name``'s
        server and that server is starting: a running server cannot move the proxy, and
        no other credential (the user's own tokens included) can.
        """
        server = self._servers.get(user_name)
        starting = server is not None and server.state == ServerState.STARTING
        expected = server.spawner.token if server is not None and starting else ""
        # one answer whether or not a server is starting: the refusal reveals nothing
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            raise AddressRefused("Only the starting server itself may report its address.")
        assert server is not None  # (a token was expected)
        if not server.spawner.address_reported(host, port):
            raise AddressRefused("This server's spawner does not take address reports.")
        self.log.info("server of %s reported its address %s:%s", user_name, host, port)

    def spawner_service(self, kind: type[ServiceT]) -> ServiceT:
        """The one ``kind(parent=self)`` all spawners share (a batch scheduler's poller:
        one ``squeue`` for every job); made at first use, gone with this manager."""
        service = self._spawner_services.get(kind)
        if service is None:
            service = self._spawner_services[kind] = kind(parent=self)
        return service

    def record_activity(self, user_name: str, when: datetime | None = None) -> None:
        """Note activity (proxied traffic, or reported through the API) in memory; the
        poll loop writes it out, throttled. Times only move forward."""
        server = self._servers.get(user_name)
        if server is None or server.state != ServerState.RUNNING:
            return
        when = when or _now()
        if server.last_activity is None or when > server.last_activity:
            server.last_activity = when

    async def progress(self, user_name: str) -> AsyncIterator[dict[str, Any]]:
        """JupyterHub-shaped spawn progress events, ending with a ready or failed one.

        A queued start's events carry ``queue_position`` (1 for the next in line) and say
        how many starts come before it.
        """
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
            if server.state == ServerState.RUNNING:  # e.g. re-adopted: no events of its start
                yield _event(server.url, 100, "Server ready", ready=True, phase="ready")
                return
            if server.state in (ServerState.STOPPED, ServerState.STOPPING):
                yield self._not_running_event(user_name)
                return
            await changed.wait()

    # -- limits and the queue ----------------------------------------------------------

    def _count(self, states: frozenset[ServerState]) -> int:
        return sum(1 for server in self._servers.values() if server.state in states)

    def _check_limits(self) -> None:
        """JupyterHub's two limits, with a queue of ``spawn_queue_limit`` in between."""
        limit = self.active_server_limit
        if limit and self._count(ACTIVE_STATES) >= limit:
            self.log.info("%s servers active, refusing another start", limit)
            raise SpawnLimitReached(
                "Active server limit exceeded. Try again in a few minutes.",
                retry_after=max(60, self.spawn_retry_after),
            )
        pending = self._count(frozenset({ServerState.QUEUED, ServerState.STARTING}))
        if pending >= self._queue.limit + self.spawn_queue_limit:
            self.log.warning("%s starts pending, refusing another", pending)
            raise SpawnLimitReached(
                "Too many servers are starting right now."
                f" Try again in {self.spawn_retry_after} seconds.",
                retry_after=self.spawn_retry_after,
            )

    def _announce_queue(self) -> None:
        """Tell every queued start how many come before it (when that changed)."""
        for name, ahead in self._queue.ahead().items():
            server = self._servers.get(name)
            if server is None or server.state != ServerState.QUEUED:
                continue
            if ahead == server.announced_ahead:
                continue
            server.announced_ahead = ahead
            position = ahead - self._queue.starting + 1
            verb = "server is" if ahead == 1 else "servers are"
            server.emit(
                5,
                f"Waiting to start: {ahead} {verb} starting before this one",
                queue_position=position,
                phase="queued",
            )

    # -- starting ------------------------------------------------------------------

    async def _spawn(self, server: _Server, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await previous
        async with self._queue.slot(server.user.name):
            server.state = ServerState.STARTING
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
        server.emit(10, "Preparing the server's database access", phase="starting")
        spawner.db_url = await self._user_database_url(server.user)
        server.nonce = secrets.token_hex(16)
        spawner.token = self._server_token(name, server.nonce)
        server.emit(30, "Starting the server", phase="starting")
        while True:
            host, port = await spawner.start()
            server.upstream = Upstream(host, port, spawner.token)
            await self._save_row(server)
            server.emit(50, "Waiting for the server to answer", phase="waiting")
            exit_code = await self._wait_ready(server)
            if exit_code is None:
                break
            if not spawner.retry_start():
                raise SpawnFailed(f"The server exited with code {exit_code} before it answered.")
            server.emit(50, "The port was taken; starting again on another one", phase="starting")
        await self._save_row(server, ServerState.RUNNING)
        server.state, server.last_activity = ServerState.RUNNING, _now()
        self.log.info("server of %s is ready at %s:%s", name, host, port)
        server.emit(100, "Server ready", ready=True, phase="ready")

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
        server.emit(100, message, failed=True, phase="failed")

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
        """End what is left of the server, forget it (row included)."""
        try:
            await server.spawner.stop()
        finally:
            try:
                async with self.hub.db.begin() as conn:
                    await query.delete_server(conn, server.user.id)
            finally:
                server.state, server.upstream, server.nonce = ServerState.STOPPED, None, None
                server.wake()

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
            if server.state != ServerState.RUNNING:
                continue
            exit_code = await server.spawner.poll()
            if exit_code is not None:
                await self._died(server, exit_code)
            elif self._is_idle(server):
                self.log.info("stopping the idle server of %s", server.user.name)
                self._in_background(self.stop(server.user))
        await self._save_activity()

    async def _died(self, server: _Server, exit_code: int) -> None:
        """The process ended by itself: stopped (exit 0) or failed.

        Exit 0 is a shutdown from inside (JupyterLab's File > Shut Down, the server's own
        culler), or a server whose exit code nobody can know any more (the spawner's
        contract: one the hub re-adopted and that is gone), so no failure is claimed.
        """
        await self._end_process(server)
        server.events = []
        if exit_code == 0:
            self.log.info("server of %s stopped by itself", server.user.name)
            server.emit(100, "Your server has stopped.")
            return
        self.log.warning("server of %s exited (code %s)", server.user.name, exit_code)
        server.log_tail = server.spawner.log_tail()
        why = server.spawner.end_reason() or f"exit code {exit_code}"
        server.error = f"Your server stopped unexpectedly ({why})."
        server.emit(100, server.error, failed=True)

    def _is_idle(self, server: _Server) -> bool:
        if not self.cull_idle_timeout or server.last_activity is None:
            return False
        idle = (_now() - server.last_activity).total_seconds()
        return idle > self.cull_idle_timeout

    def _in_background(self, coroutine) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- adopting after a restart -----------------------------------------------------

    async def _readopt(self, server: _Server, record: query.ServerRecord) -> None:
        """Take over a recorded server if it lives and answers with its token, else end it."""
        name = server.user.name
        server.spawner.load_state(record.spawner_state)
        token = self._server_token(name, record.token_nonce)
        server.spawner.token = token
        server.nonce = record.token_nonce
        server.upstream = Upstream(record.host, record.port, token)
        token_matches = hmac.compare_digest(_sha256(token), record.token_hash)
        alive = token_matches and await server.spawner.poll() is None
        if alive and await self._answers(server, "api/status"):
            if record.state != ServerState.RUNNING:
                await self._save_row(server, ServerState.RUNNING)
            server.state = ServerState.RUNNING
            server.activity_saved = time.monotonic()
            server.activity_written = record.last_activity
            self.log.info("re-adopted the running server of %s", name)
            server.emit(100, "Server ready", ready=True, phase="ready")
            return
        self.log.info("forgetting the recorded server of %s: not answering", name)
        await self._end_process(server)
        server.emit(100, "Your server was not running after the hub restarted.", failed=True)

    # -- the servers table ---------------------------------------------------------

    async def _save_row(self, server: _Server, state: ServerState | None = None) -> None:
        assert server.upstream is not None and server.started is not None
        record = query.ServerRecord(
            user_id=server.user.id,
            state=state or server.state,
            host=server.upstream.host,
            port=server.upstream.port,
            token_hash=_sha256(server.upstream.token),
            token_nonce=server.nonce or "",
            spawner_state=server.spawner.get_state(),
            started=server.started,
        )
        async with self.hub.db.begin() as conn:
            await query.save_server(conn, record)

    async def _save_activity(self, *, force: bool = False) -> None:
        """Write last-activity times that changed since they were last written, at most
        once per ``activity_resolution``; an idle server's rows are left alone."""
        now = time.monotonic()
        due = {
            server.user.id: server
            for server in self._servers.values()
            if server.state == ServerState.RUNNING
            and server.last_activity is not None
            and server.last_activity != server.activity_written
            and (force or now - server.activity_saved >= self.activity_resolution)
        }
        if not due:
            return
        times = {user_id: server.last_activity for user_id, server in due.items()}
        async with self.hub.db.begin() as conn:
            await query.record_servers_activity(conn, times)  # type: ignore[arg-type]
        for user_id, server in due.items():
            server.activity_saved, server.activity_written = now, times[user_id]

    # -- helpers -------------------------------------------------------------------

    def _server_for(self, user: User) -> _Server:
        server = self._servers.get(user.name)
        if server is None or server.user.id != user.id:
            spawner = self.hub.spawner_class(hub=self.hub, user=user, parent=self)
            server = _Server(user, spawner, self._user_url(user.name))
            spawner.on_progress = functools.partial(server.emit, 40)
            self._servers[user.name] = server
        return server

    def _user_url(self, user_name: str) -> str:
        return user_url(self.hub, user_name)

    def _not_running_event(self, user_name: str) -> dict[str, Any]:
        server = self._servers.get(user_name)
        message = (server.error if server else None) or "The server is not running."
        return _event(self._user_url(user_name), 100, message, failed=True, phase="failed")


def _event(
    url: str, progress: int, message: str, *, ready: bool = False, failed: bool = False, **extra
) -> dict[str, Any]:
    """A spawn progress event, shaped like JupyterHub's, plus gilhub's ``extra`` fields:
    ``phase`` (``queued``, ``starting``, ``waiting`` for the server to answer, ``ready``,
    ``failed``) and, while queued, ``queue_position``."""
    return {
        "progress": progress,
        "message": message,
        "ready": ready,
        "failed": failed,
        "url": url,
        **extra,
    }


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
