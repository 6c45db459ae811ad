"""The edge where the activity's errors (:mod:`.errors`) become HTTP statuses: in the hub's
API and pages, and in the handlers of the user servers' extension alike (both answer a
tornado ``HTTPError`` with a JSON message)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.web import HTTPError

from gilhub.activity.errors import (
    ActivityError,
    BadActivity,
    Flooded,
    NotebookNotRecorded,
    PromptNotFound,
    TooMuchActivity,
)

#: The HTTP status each activity error answers with.
ERROR_STATUS: dict[type[ActivityError], int] = {
    BadActivity: 400,
    PromptNotFound: 404,
    NotebookNotRecorded: 404,
    TooMuchActivity: 413,
    Flooded: 429,
}


def activity_errors(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn the activity's errors into HTTP errors with their message."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except ActivityError as error:
            status = ERROR_STATUS.get(type(error), 400)
            raise HTTPError(status, error.message.replace("%", "%%")) from None

    return wrapper
