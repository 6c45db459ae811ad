"""The edge where the runs' errors (:mod:`.errors`) become HTTP statuses."""

from __future__ import annotations

from gilhub.runs.errors import (
    BadRunRequest,
    DefinitionNotFound,
    NotebookNotFound,
    RunError,
    RunFinished,
    RunNotFound,
)
from gilhub.web_errors import domain_errors

#: The runs' errors as JSON HTTP errors of these statuses (400 for the others).
run_errors = domain_errors(
    RunError,
    {
        BadRunRequest: 400,
        RunNotFound: 404,
        NotebookNotFound: 404,
        DefinitionNotFound: 404,
        RunFinished: 409,
    },
)
