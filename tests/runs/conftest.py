"""The runs tests use the real hub fixture of the hub tests (and its command-line directory)."""

from tests.hub.conftest import hub, workdir  # noqa: F401  (re-exported as fixtures)
