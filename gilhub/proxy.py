"""``/user/NAME/…``: the hub's reverse proxy to NAME's server.

After the hub's own login check, every request is forwarded to the user's
server, at the address its spawner reported (loopback for a local server, a node's
address for a batch job), with the server's token added (the browser never sees that
token, and the server never sees the hub's session cookie).

- **HTTP** bodies stream both ways: the request body is read chunk by chunk
  (``stream_request_body``) and written upstream as it arrives; the response
  body is written to the browser as it arrives. In both directions at most a
  few chunks wait in between (back-pressure beyond), so a 1 GB transfer never
  sits in the hub's memory.
- **Keep-alive to upstreams.** Tornado's ``simple_httpclient`` opens a new
  connection per request; :class:`UpstreamPool` keeps idle HTTP/1.1
  connections per server and speaks HTTP through tornado's own
  :class:`~tornado.http1connection.HTTP1Connection`.
- **WebSocket** upgrades are forwarded as a raw TCP tunnel: the handshake is
  relayed with the token added, then bytes are piped both ways without
  decoding frames, with TCP_NODELAY on both sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any
from urllib.parse import quote, urlencode

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError
from tornado.log import app_log
from tornado.tcpclient import TCPClient
from tornado.web import HTTPError, stream_request_body

from gilhub.handlers.base import SESSION_COOKIE, BaseHandler
from gilhub.servers import Upstream

#: Headers that describe one connection, not the message; never forwarded.
HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Trailers", "Transfer-Encoding", "Upgrade",
    )
)  # fmt: skip

# Large enough that a typical response is relayed in one piece and one write.
_CHUNK_SIZE = 512 * 1024
# What one read from a user server's socket asks for: tornado zero-fills a buffer of this
# size for every read, so a larger size costs time on every response; a typical response
# (up to about the socket's receive buffer) still comes in one read.
_READ_SIZE = 128 * 1024
_UNLIMITED = 1 << 50
_CONNECT_TIMEOUT = 10.0
_HANDSHAKE_TIMEOUT = 30.0
_BODY_QUEUE_CHUNKS = 4
_RELAY_QUEUE_CHUNKS = 2
#: The methods whose bodies of unknown length tornado's HTTP client sends chunked itself.
_CLIENT_CHUNKS = frozenset({"POST", "PUT", "PATCH"})
_UPSTREAM_PARAMS = HTTP1ConnectionParameters(
    chunk_size=_CHUNK_SIZE, max_header_size=64 * 1024, max_body_size=_UNLIMITED, decompress=False
)


class UpstreamPool:
    """Idle keep-alive connections to user servers, per (host, port)."""

    def __init__(self, max_idle_per_upstream: int = 16) -> None:
        self.max_idle = max_idle_per_upstream
        self._idle: dict[tuple[str, int], list[IOStream]] = defaultdict(list)
        self._tcp = TCPClient()

    async def acquire(self, upstream: Upstream) -> tuple[IOStream, bool]:
        """A connection to ``upstream`` and whether it was reused from the pool."""
        idle = self._idle[(upstream.host, upstream.port)]
        while idle:
            stream = idle.pop()
            if not stream.closed():
                stream.set_close_callback(None)
                return stream, True
        stream = await self._tcp.connect(upstream.host, upstream.port, timeout=_CONNECT_TIMEOUT)
        stream.set_nodelay(True)
        stream.read_chunk_size = _READ_SIZE
        return stream, False

    def release(self, upstream: Upstream, stream: IOStream) -> None:
        """Keep ``stream`` for the next request (or close it if the pool is full)."""
        idle = self._idle[(upstream.host, upstream.port)]
        if stream.closed() or len(idle) >= self.max_idle:
            stream.close()
            return
        # Also makes the stream watch for the server closing it while idle.
        stream.set_close_callback(lambda: _discard(idle, stream))
        idle.append(stream)


def _discard(idle: list[IOStream], stream: IOStream) -> None:
    with contextlib.suppress(ValueError):
        idle.remove(stream)


class _ResponseRelay(httputil.HTTPMessageDelegate):
    """Receives the upstream's response and writes it to the browser as it comes.

    A body of at most ``_CHUNK_SIZE`` bytes (``Content-Length``: most API answers and
    small files) is handed to the browser's connection as it arrives and sent with the
    response's end: nothing more to wait for. Larger or unframed bodies are streamed:
    reading from the server and writing to the browser overlap, a writer task sends each
    chunk while the next one is read, with at most ``_RELAY_QUEUE_CHUNKS`` chunks waiting
    between them (back-pressure beyond).
    """

    def __init__(self, handler: UserProxyHandler, stream: IOStream) -> None:
        self.handler = handler
        self.stream = stream
        self.start_line: httputil.ResponseStartLine | None = None
        self.headers: httputil.HTTPHeaders | None = None
        self.complete = False
        self.browser_gone = False
        self._small = False
        # Only a streamed body needs these (created in headers_received).
        self._chunks: asyncio.Queue[bytes | None] | None = None
        self._writer: asyncio.Task[None] | None = None

    def headers_received(self, start_line, headers) -> None:  # type: ignore[override]
        if start_line.code < 200:
            return  # informational (100 Continue): the real response follows
        self.start_line, self.headers = start_line, headers  # type: ignore[assignment]
        self.handler.relay_headers(start_line, headers)  # type: ignore[arg-type]
        length = headers.get("Content-Length", "")
        self._small = length.isdigit() and int(length) <= _CHUNK_SIZE
        if not self._small:
            self._chunks = asyncio.Queue(_RELAY_QUEUE_CHUNKS)
            self._writer = asyncio.create_task(self._write_to_browser(self._chunks))

    async def data_received(self, chunk: bytes) -> None:  # type: ignore[override]
        if self._small:
            self.handler.write(chunk)  # at most _CHUNK_SIZE in all; sent by finish()
        elif not self.browser_gone:
            assert self._chunks is not None
            await self._chunks.put(chunk)

    def finish(self) -> None:
        self.complete = True

    async def _write_to_browser(self, chunks: asyncio.Queue[bytes | None]) -> None:
        try:
            while (chunk := await chunks.get()) is not None:
                self.handler.write(chunk)
                await self.handler.flush()
        except StreamClosedError:
            # The browser went away: stop reading from the server, unblock the reader.
            self.browser_gone = True
            self.stream.close()
            while not chunks.empty():
                chunks.get_nowait()

    async def drain(self) -> None:
        """After the whole response was read: wait until the browser has what was streamed
        (a small body goes out with the handler's ``finish()``)."""
        if self._writer is None or self._chunks is None:
            return
        if not self.browser_gone:
            await self._chunks.put(None)
        await self._writer

    def abandon(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    def can_keep_alive(self) -> bool:
        """Whether the connection may carry another request after this response."""
        if not self.complete or self.start_line is None or self.headers is None:
            return False
        if self.start_line.version != "HTTP/1.1":
            return False
        if self.headers.get("Connection", "").lower() == "close":
            return False
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        framed = chunked or "Content-Length" in self.headers
        no_body = self.start_line.code in (204, 304) or self.handler.request.method == "HEAD"
        return framed or no_body


@stream_request_body
class UserProxyHandler(BaseHandler):
    """Forwards ``/user/NAME/…`` to NAME's server, after the hub's own checks."""

    token_scopes = None  # access:servers for NAME, checked in authorize()

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")
    #: Streamed, never held in memory: authenticated senders are not limited.
    body_limit = _UNLIMITED

    def initialize(self) -> None:
        #: The request body's chunks on their way upstream (only for a request with a body).
        self._body: asyncio.Queue[bytes | None] | None = None
        self._body_refused = False
        self._upstream: Upstream | None = None
        self._exchange: asyncio.Task[None] | None = None

    def set_default_headers(self) -> None:
        """Responses carry the user server's headers, not the hub pages' defaults."""

    def finish(self, chunk: Any = None) -> Any:
        if self._upstream is None and not self._headers_written:
            # Answered from prepare(), before tornado read the request's body: tornado closes
            # the connection afterwards, so say it, or a client sends its next request on it.
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def check_xsrf_cookie(self) -> None:
        """jupyter_server checks XSRF itself; the hub's cookie-XSRF would break its API."""

    def compute_etag(self) -> None:
        return None

    # -- the hub's checks -----------------------------------------------------

    async def prepare(self) -> None:
        await super().prepare()  # a lost database: 503 with Retry-After, logged once per outage
        name = self.path_kwargs["name"]
        if not self.authorize(name):
            return
        upstream = self.hub.servers.upstream(name)
        if upstream is None:
            self.server_not_running(name)
            return
        self.hub.servers.record_activity(name)
        if self.is_websocket_upgrade():
            await self.tunnel_websocket(upstream, name)
            return
        self._upstream = upstream
        if self.has_request_body():
            # The exchange starts now and sends the body upstream chunk by chunk as it arrives.
            self._body = asyncio.Queue(_BODY_QUEUE_CHUNKS)
            self._exchange = asyncio.create_task(self.exchange(upstream))

    def authorize(self, name: str) -> bool:
        """403 unless the user may use NAME's server; ``False`` if sent to log in."""
        user = self.current_user
        if user is None:
            if self.is_browser_navigation():
                self.redirect(self.login_url_for(self.request.uri or "/"))
                return False
            raise HTTPError(403, "Login required.")
        if not self.has_scope("access:servers", name):
            raise HTTPError(403, "This is not your server.")
        if self.auth_method == "cookie" and self.is_cross_origin_write():
            raise HTTPError(403, "Cross-origin request refused.")
        return True

    def server_not_running(self, name: str) -> None:
        if self.is_browser_navigation():
            query = urlencode({"next": self.request.uri})
            self.redirect(f"{self.hub.hub_prefix}spawn/{quote(name)}?{query}")
            return
        raise HTTPError(503, f"The server of {name} is not running.")

    def has_request_body(self) -> bool:
        headers = self.request.headers
        return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"

    def is_websocket_upgrade(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    def is_cross_origin_write(self) -> bool:
        """A WebSocket or state-changing request sent by a page of another origin.

        The hub adds the server's token, so jupyter_server skips its own Origin and XSRF
        checks; for cookie-authenticated requests the hub makes the Origin check itself
        (browsers send ``Origin`` on every such request; other clients may omit it).
        """
        if self.request.method in ("GET", "HEAD", "OPTIONS") and not self.is_websocket_upgrade():
            return False
        origin = self.request.headers.get("Origin")
        if origin is None:
            return False
        return origin.lower() != f"{self.request.protocol}://{self.request.host}".lower()

    def is_browser_navigation(self) -> bool:
        """A page load, as opposed to an API call or a WebSocket."""
        return (
            self.request.method == "GET"
            and not self.is_websocket_upgrade()
            and "text/html" in self.request.headers.get("Accept", "")
        )

    async def _execute(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        try:
            await super()._execute(*args, **kwargs)
        finally:
            if self._exchange is not None and not self._exchange.done():
                self._exchange.cancel()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.is_browser_navigation():
            super().write_error(status_code, **kwargs)
            return
        self.write_json_error(status_code, kwargs.get("exc_info"))

    # -- HTTP --------------------------------------------------------------------

    async def data_received(self, chunk: bytes) -> None:
        # (an empty chunk would end a chunked body)
        if chunk and self._body is not None and not self._body_refused:
            await self._body.put(chunk)

    async def _forward(self, *args: Any, **kwargs: Any) -> None:
        """Every method: the body has been received; run or finish the exchange."""
        assert self._upstream is not None
        if self._body is not None and not self._body_refused:
            await self._body.put(None)
        try:
            await (self._exchange or self.exchange(self._upstream))
        except (OSError, StreamClosedError, httputil.HTTPInputError) as error:
            if self._headers_written:
                # Mid-response: the only honest signal left is closing the connection.
                self.request.connection.close()  # type: ignore[union-attr]
                return
            self.log_upstream_failure(error)
            raise HTTPError(503, "The user server is not answering.") from None

    get = head = post = delete = patch = put = options = _forward

    async def exchange(self, upstream: Upstream) -> None:
        """One request/response with the server over a pooled keep-alive connection."""
        pool = self.hub.upstream_pool
        try:
            for attempt in (1, 2):
                stream, reused = await pool.acquire(upstream)
                relay = _ResponseRelay(self, stream)
                sent_body = False
                try:
                    connection = HTTP1Connection(stream, True, _UPSTREAM_PARAMS)
                    sent_body = await self._send_request(connection, upstream)
                    await connection.read_response(relay)
                    await relay.drain()
                except StreamClosedError:
                    relay.abandon()
                    stream.close()
                    # A pooled connection the server had closed meanwhile: retry once,
                    # when nothing of this exchange has gone through yet.
                    if reused and attempt == 1 and relay.start_line is None and not sent_body:
                        continue
                    raise
                except BaseException:
                    relay.abandon()
                    stream.close()
                    raise
                if relay.start_line is None:
                    raise StreamClosedError()
                if relay.can_keep_alive():
                    pool.release(upstream, stream)
                else:
                    stream.close()
                return
        finally:
            self._refuse_body()

    async def _send_request(self, connection: HTTP1Connection, upstream: Upstream) -> bool:
        """Write the request; return whether any body bytes were sent.

        The body goes upstream framed as the browser framed it: with its ``Content-Length``
        (kept among the headers, and enforced by tornado while writing), or chunked.
        Tornado's client chunks a body of unknown length only for POST, PUT and PATCH; for
        any other method the chunks are framed here, so that a body can never be read
        upstream as the start of another request.
        """
        method = self.request.method or "GET"
        start_line = httputil.RequestStartLine(method, self.request.uri, "HTTP/1.1")
        headers = self.upstream_headers(upstream)
        frame_here = "Transfer-Encoding" in self.request.headers and method not in _CLIENT_CHUNKS
        if frame_here:
            headers["Transfer-Encoding"] = "chunked"
        await connection.write_headers(start_line, headers)
        sent_body = False
        if self._body is not None:
            while (chunk := await self._body.get()) is not None:
                sent_body = True
                await connection.write(
                    b"%x\r\n%b\r\n" % (len(chunk), chunk) if frame_here else chunk
                )
            if frame_here:
                await connection.write(b"0\r\n\r\n")
            self._body.put_nowait(None)  # kept for a retry's second read
        connection.finish()
        return sent_body

    def _refuse_body(self) -> None:
        """After the exchange: drop what the browser still sends (unblocking its reader)."""
        self._body_refused = True
        while self._body is not None and not self._body.empty():
            self._body.get_nowait()

    def upstream_headers(
        self, upstream: Upstream, *, websocket: bool = False
    ) -> httputil.HTTPHeaders:
        """The browser's headers as the server must see them."""
        headers = httputil.HTTPHeaders()
        for name, value in self.request.headers.get_all():
            lowered = name.lower()
            # Expect: the hub has answered "100 Continue" to the browser itself.
            if lowered in HOP_BY_HOP or lowered in ("authorization", "cookie", "expect"):
                continue
            if lowered.startswith("x-forwarded-"):
                continue
            headers.add(name, value)
        cookies = _without_session_cookie(self.request.headers.get_list("Cookie"))
        if cookies:
            headers["Cookie"] = cookies
        headers["Authorization"] = f"token {upstream.token}"
        # remote_ip and protocol already honour X-Forwarded-* when the hub trusts them.
        headers["X-Forwarded-For"] = self.request.remote_ip or ""
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        if websocket:
            headers["Connection"] = "Upgrade"
            headers["Upgrade"] = self.request.headers["Upgrade"]
        return headers

    def relay_headers(
        self, start_line: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> None:
        """The server's status and headers, minus the hop-by-hop ones, become the response's
        in place of the hub's defaults.

        Built directly rather than header by header through ``add_header``, which would
        check again each value tornado has just parsed: a cost paid on every proxied
        request. (``headers`` itself stays as it is: tornado reads the body by it.)
        """
        self.set_status(start_line.code, start_line.reason or "Unknown")
        relayed = httputil.HTTPHeaders()
        for name, value in headers.get_all():
            if name.lower() not in HOP_BY_HOP:
                relayed.add(name, value)
        self._headers = relayed

    def log_upstream_failure(self, error: BaseException) -> None:
        app_log.warning("proxy to %s failed: %r", self.request.path, error)

    # -- WebSocket ---------------------------------------------------------------

    async def tunnel_websocket(self, upstream: Upstream, name: str) -> None:
        """Relay the upgrade handshake, then pipe raw bytes both ways until one side closes."""
        try:
            server = await TCPClient().connect(
                upstream.host, upstream.port, timeout=_CONNECT_TIMEOUT
            )
        except OSError as error:
            self.log_upstream_failure(error)
            raise HTTPError(503, "The user server is not answering.") from None
        server.set_nodelay(True)
        headers = self.upstream_headers(upstream, websocket=True)
        lines = [f"GET {self.request.uri} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.get_all())]
        await server.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            response_head = await asyncio.wait_for(
                server.read_until_regex(b"\r?\n\r?\n", max_bytes=64 * 1024), _HANDSHAKE_TIMEOUT
            )
        except (StreamClosedError, OSError):
            server.close()
            raise HTTPError(
                503, "The user server did not answer the WebSocket handshake."
            ) from None
        browser = self.detach()
        browser.set_nodelay(True)

        def activity() -> None:
            self.hub.servers.record_activity(name)

        with contextlib.suppress(StreamClosedError):
            await browser.write(response_head)
        await asyncio.gather(_pipe(server, browser, activity), _pipe(browser, server, activity))


async def _pipe(source: IOStream, sink: IOStream, on_data) -> None:
    """Copy bytes until either side closes, then close both."""
    try:
        while True:
            chunk = await source.read_bytes(_CHUNK_SIZE, partial=True)
            on_data()
            await sink.write(chunk)
    except StreamClosedError:
        pass
    finally:
        source.close()
        sink.close()


def _without_session_cookie(cookie_headers: list[str]) -> str:
    """The ``Cookie`` header minus the hub's session cookie."""
    kept = []
    for header in cookie_headers:
        for pair in header.split(";"):
            name = pair.split("=", 1)[0].strip()
            if pair.strip() and name != SESSION_COOKIE:
                kept.append(pair.strip())
    return "; ".join(kept)


handlers = [(r"/user/(?P<name>[^/]+)(?P<path>/.*)?", UserProxyHandler)]
