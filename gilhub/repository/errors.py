"""Errors of the repository, each carrying the HTTP status it maps to.

The store and the service raise these; the API turns them into JSON errors,
the pages into messages, the command line into exit codes.
"""

from __future__ import annotations

from typing import Any


class RepositoryError(Exception):
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(RepositoryError):
    status = 400


class Forbidden(RepositoryError):
    status = 403


class NotFound(RepositoryError):
    status = 404


class Conflict(RepositoryError):
    """Someone else changed the entry (or the target exists); ``details`` say how."""

    status = 409


class TooLarge(RepositoryError):
    status = 413
