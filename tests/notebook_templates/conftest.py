"""The template tests use the real hub of the hub tests, with templates pushed to its repository."""

from __future__ import annotations

from tests.hub.conftest import hub  # noqa: F401  (re-exported as a fixture)
