"""The edge where the runs' errors (:mod:`.errors`) become HTTP statuses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from gilhub.apihandlers.base import APIError
from gilhub.runs.errors import (
    BadRunRequest,
    DefinitionNotFound,
    NotebookNotFound,
    RunError,
    RunFinished,
    RunNotFound,
)

#: The HTTP status each runs error answers with.
ERROR_STATUS: dict[type[RunError], int] = {
    BadRunRequest: 400,
    RunNotFound: 404,
    NotebookNotFound: 404,
    DefinitionNotFound: 404,
    RunFinished: 409,
}


def run_errors(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn the runs' errors into JSON HTTP errors."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except RunError as error:
            raise APIError(ERROR_STATUS.get(type(error), 400), error.message) from None

    return wrapper
