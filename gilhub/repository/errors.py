"""Errors of the repository, raised by the store and the service.

They know nothing of HTTP: the pages and API choose a status for each
(:data:`gilhub.repository.web.repository_errors`), the command line shows the
message. ``details`` carry what a client needs to act (e.g. a conflict's head).
"""

from __future__ import annotations

from typing import Any


class RepositoryError(Exception):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(RepositoryError):
    """What was asked for is malformed or not allowed by the repository's rules."""


class Forbidden(RepositoryError):
    """Only the entry's author or an admin may do this."""


class NotFound(RepositoryError):
    pass


class Conflict(RepositoryError):
    """Someone else changed the entry (or the target exists); ``details`` say how."""


class TooLarge(RepositoryError):
    pass
