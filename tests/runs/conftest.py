"""The runs tests use the real hub fixture of the hub tests."""

from tests.hub.conftest import hub  # noqa: F401  (re-exported as a fixture)
