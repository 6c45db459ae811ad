"""The edge where the activity's errors (:mod:`.errors`) become HTTP statuses: in the hub's
API and pages, and in the handlers of the user servers' extension alike (both answer a
tornado ``HTTPError`` with a JSON message)."""

from __future__ import annotations

from gilhub.activity.errors import (
    ActivityError,
    BadActivity,
    Flooded,
    NotebookNotRecorded,
    PromptNotFound,
    TooMuchActivity,
)
from gilhub.web_errors import domain_errors

#: The activity's errors as HTTP errors of these statuses (400 for the others).
activity_errors = domain_errors(
    ActivityError,
    {
        BadActivity: 400,
        PromptNotFound: 404,
        NotebookNotRecorded: 404,
        TooMuchActivity: 413,
        Flooded: 429,
    },
)
