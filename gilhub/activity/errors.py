"""Errors of the activity part, raised by its query functions and services.

They know nothing of HTTP: the handlers (:mod:`.web` in the hub, the server extension's
:mod:`gilhub.serverext.activity`) choose a status for each.
"""

from __future__ import annotations


class ActivityError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadActivity(ActivityError):
    """A request's content is malformed: not the shape the contract describes."""


class TooMuchActivity(ActivityError):
    """A body larger than one request may carry."""


class PromptNotFound(ActivityError):
    """No such prompt, or another user's (the two are not told apart)."""


class NotebookNotRecorded(ActivityError):
    """Nothing is recorded for this notebook."""


class Flooded(ActivityError):
    """More events in the last minute than a server accepts (a runaway loop, not work)."""
