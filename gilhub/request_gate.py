"""What the hub decides about a request's body before reading any of it.

Tornado reads a request's whole body into memory before a handler runs (except for
``stream_request_body`` handlers), so a limit checked in a handler comes too late: an
anonymous client could make the hub hold ``max_body_size`` bytes per connection. Every
request therefore passes :class:`BodyGate` first, which looks at the headers only:

- **Framing.** ``Content-Length`` together with ``Transfer-Encoding``, a repeated or
  malformed ``Content-Length``, or a transfer coding other than ``chunked`` is refused
  with 400: a message whose length two servers could read differently is how requests
  are smuggled past a proxy.
- **Size.** A body of at most ``unauthenticated_body_limit`` bytes (the login form's
  size) is let through as it is; the server's own limit is that size. A larger or
  chunked body is let through only after the sender is authenticated, up to the
  handler's ``body_limit`` (``None``: the hub's ``max_body_size``); otherwise, or when
  the declared length is larger, the answer is 413 and the connection is closed
  unread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from tornado import httputil
from tornado.iostream import StreamClosedError
from tornado.web import Application

from gilhub.db import DatabaseUnavailable
from gilhub.handlers.base import authenticate_request

if TYPE_CHECKING:
    from gilhub.app import GilHub

_DIGITS = re.compile(r"[0-9]{1,18}")


class HubApplication(Application):
    """The hub's Tornado application: every request passes the :class:`BodyGate`."""

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        return BodyGate(self.settings["hub"], request, super().find_handler(request, **kwargs))


def framing_problem(headers: httputil.HTTPHeaders) -> str | None:
    """Why the body's length is ambiguous, or ``None`` when it is clear."""
    lengths = headers.get_list("Content-Length")
    codings = headers.get_list("Transfer-Encoding")
    if lengths and codings:
        return "Content-Length and Transfer-Encoding together are refused."
    if len(lengths) > 1:
        return "A repeated Content-Length is refused."
    if lengths and not _DIGITS.fullmatch(lengths[0].strip()):
        return "Content-Length must be a number."
    if codings and (len(codings) > 1 or codings[0].strip().lower() != "chunked"):
        return "The only transfer coding accepted is chunked."
    return None


class BodyGate(httputil.HTTPMessageDelegate):
    """Checks a request's framing and size, then hands it to its handler (or refuses it)."""

    def __init__(self, hub: GilHub, request: httputil.HTTPServerRequest, handler: Any) -> None:
        self.hub = hub
        self.request = request
        self.handler = handler
        self.admitted = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        problem = framing_problem(headers)
        if problem is not None:
            return self.refuse(400, problem)
        declared = int(headers.get("Content-Length", "0"))
        if "Transfer-Encoding" in headers or declared > self.hub.unauthenticated_body_limit:
            return self.admit_large_body(start_line, headers, declared)
        self.admitted = True
        return self.handler.headers_received(start_line, headers)

    async def admit_large_body(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        declared: int,
    ) -> None:
        limit = await self.body_limit()
        if declared > limit:
            await self.refuse(413, f"The request body is larger than {limit:,} bytes.")
            return
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
        self.admitted = True
        started = self.handler.headers_received(start_line, headers)
        if started is not None:
            await started

    async def body_limit(self) -> int:
        """The largest body this request may send: small unless its sender is known."""
        try:
            identity, _ = await authenticate_request(self.hub, self.request)
        except (SQLAlchemyError, OSError, DatabaseUnavailable):
            identity = None  # the handler answers for the database itself
        if identity is None:
            return self.hub.unauthenticated_body_limit
        limit = getattr(self.handler.handler_class, "body_limit", None)
        return self.hub.max_body_size if limit is None else limit

    async def refuse(self, status: int, message: str) -> None:
        """Answer ``status`` without reading the body, then close the connection."""
        connection = self.request.connection
        assert connection is not None
        body = json.dumps({"status": status, "message": message}).encode()
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json; charset=UTF-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
            }
        )
        line = httputil.ResponseStartLine("HTTP/1.1", status, HTTPStatus(status).phrase)
        try:
            await connection.write_headers(line, headers, body)
        except StreamClosedError:
            pass
        # Closed now, the body is never read (tornado's reader stops quietly).
        connection.close()  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.handler.data_received(chunk) if self.admitted else None

    def finish(self) -> None:
        if self.admitted:
            self.handler.finish()

    def on_connection_close(self) -> None:
        if self.admitted:
            self.handler.on_connection_close()
