"""The edge where a part's domain errors become HTTP errors.

Each part's queries and services raise errors of their own that know nothing of HTTP
(a repository ``Conflict``, a run ``RunNotFound``...); the handlers choose the status.
:func:`domain_errors` makes that choice once per part, from a table of statuses, for
its API (a method decorator or a ``with`` block) and its pages (:meth:`~DomainErrors.status`).
It imports nothing of the hub, so the user servers' extension uses it too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from tornado.web import HTTPError


class APIError(HTTPError):
    """An HTTP error whose JSON answer carries ``details`` beside status and message."""

    def __init__(self, status_code: int, message: str, **details: Any) -> None:
        super().__init__(status_code, message.replace("%", "%%"))
        self.details = details


class DomainErrors:
    """Turns errors of ``base`` into :class:`APIError`\\ s with their message (and the
    ``details`` they carry): a status from ``statuses`` (the nearest class of the error
    listed there), else ``default``."""

    def __init__(
        self, base: type[Exception], statuses: Mapping[type[Exception], int], default: int
    ) -> None:
        self.base, self.statuses, self.default = base, statuses, default

    def status(self, error: Exception) -> int:
        listed = (self.statuses[cls] for cls in type(error).__mro__ if cls in self.statuses)
        return next(listed, self.default)

    def http_error(self, error: Exception) -> APIError:
        return APIError(self.status(error), str(error), **getattr(error, "details", {}))

    def __call__(self, method: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """Decorate a handler method (a coroutine or not) whose errors are to be turned."""

        @functools.wraps(method)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                result = method(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result

        return wrapper

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, self.base):
            raise self.http_error(error) from None


def domain_errors(
    base: type[Exception], statuses: Mapping[type[Exception], int], default: int = 400
) -> DomainErrors:
    """The errors of one part (all derived from ``base``) as HTTP errors, e.g.
    ``run_errors = domain_errors(RunError, {RunNotFound: 404})``, then ``@run_errors`` on a
    handler method or ``with run_errors:`` around a call."""
    return DomainErrors(base, statuses, default)
