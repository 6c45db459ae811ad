"""What can go wrong with a template request; the HTTP status is chosen by pages and API."""

from __future__ import annotations


class TemplateError(Exception):
    """Base of the templates' domain errors; ``message`` is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameters(TemplateError):
    """The parameters (or a name built from them) are not acceptable."""


class MissingParameter(BadParameters):
    """A ``{param}`` placeholder of the file name has no value."""

    def __init__(self, name: str, file_name: str) -> None:
        super().__init__(f"the parameter {name!r} is missing (the file name {file_name!r} uses it)")
        self.name = name


class TooLarge(BadParameters):
    """The parameters are larger than the bound."""


class TemplateNotFound(TemplateError):
    """No template at that path (``templates`` lists the ones there are)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"there is no template {path!r}")
        self.path = path


class BadTemplate(TemplateError):
    """The template itself cannot be used (not a notebook, no translator for its language)."""


class DestinationExists(TemplateError):
    """The destination is taken and the request said not to pick another name."""

    def __init__(self, path: str) -> None:
        super().__init__(f"you already have {path!r}")
        self.path = path


class BadToken(TemplateError):
    """A signed request token that was tampered with, or has expired."""
