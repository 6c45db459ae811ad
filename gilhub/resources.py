"""Where gilhub's templates, static assets and SQL migrations live.

In an installed wheel they sit inside the package (``gilhub/templates`` …);
in a source checkout they sit at the top of the repository, beside ``gilhub/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the directory ``name`` (``templates``, ``static`` or ``sql``)."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gilhub resource directory {name!r} is missing from the install")


def templates_dir() -> Path:
    return resource_dir("templates")


def static_dir() -> Path:
    return resource_dir("static")


def sql_dir() -> Path:
    return resource_dir("sql")
