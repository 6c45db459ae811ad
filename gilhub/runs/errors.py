"""Errors of the runs part, raised by the query functions and the service.

They know nothing of HTTP: :mod:`.web` chooses a status for each.
"""

from __future__ import annotations


class RunError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRunRequest(RunError):
    """What was asked for is malformed (parameters not a JSON object, a bad path …)."""


class RunNotFound(RunError):
    """No such run, or not one the asker may see (the two are not told apart)."""


class NotebookNotFound(RunError):
    """The notebook to run is not in the user's storage or the repository."""


class RunFinished(RunError):
    """The run has ended already (it cannot be cancelled)."""


class DefinitionNotFound(RunError):
    """No such run definition of the asker's."""
