"""A user server while its notebook database is down: 503 with ``Retry-After``, quiet logs.

The contents manager answers 503 for every request that needs the lost
database and logs the outage once (see :mod:`gilhub.db.outage`). Left alone,
jupyter_server and tornado would add per request a warning with the error, a
"wrote error" line and an error-level access line with the request's headers;
and jupyter_server's error handlers cannot set a response header from an
exception. This module adds ``Retry-After`` to every 503 and logs 503s at debug
level, one line each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tornado import httputil
from tornado.web import OutputTransform, RequestHandler

from gilhub.contents.edge import DatabaseUnavailableError
from gilhub.db.outage import RETRY_AFTER_SECONDS


class RetryAfterOn503(OutputTransform):
    """Adds ``Retry-After`` to 503 responses that lack it."""

    def transform_first_chunk(
        self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        if status_code == 503 and "Retry-After" not in headers:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return status_code, headers, chunk


class WithoutOutageRepeats(logging.Filter):
    """Drops the per-request repeats of a lost database's 503 (the outage is logged once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # "…unavailable: reason" is the error's text; the outage's own line differs
        return f"{DatabaseUnavailableError.MESSAGE}:" not in record.getMessage()


def quiet_503s(log_request: Callable[[RequestHandler], None]) -> Callable[[RequestHandler], None]:
    """``log_request`` except that a 503 is one debug line (no headers at error level)."""

    def log_function(handler: RequestHandler) -> None:
        if handler.get_status() != 503:
            log_request(handler)
            return
        request = handler.request
        handler.log.debug("503 %s %s", request.method, request.path)  # type: ignore[attr-defined]

    return log_function


def install(serverapp: Any) -> None:
    web_app = serverapp.web_app
    web_app.add_transform(RetryAfterOn503)
    web_app.settings["log_function"] = quiet_503s(web_app.settings["log_function"])
    repeats = WithoutOutageRepeats()
    for logger in (serverapp.log, logging.getLogger("tornado.general")):
        logger.addFilter(repeats)
