"""Validation of API paths before they reach a query.

API paths are relative, ``/``-separated, with ``''`` for the root. Anything
that could name something outside the user's tree, or that no file system
would accept, is refused here (:class:`~.errors.InvalidPath`, HTTP 400 at the
edge), so queries only ever see normalised paths.
"""

from __future__ import annotations

import re

from gilhub.contents.errors import InvalidPath

MAX_COMPONENT_LENGTH = 255
#: A B-tree index entry holds at most ~2.7 kB; (owner, path) must fit in one.
MAX_PATH_LENGTH = 2000
_WINDOWS_DRIVE = re.compile(r"^/?[A-Za-z]:(/|$)")
_FORBIDDEN_CHARACTERS = {"\x00": "a NUL byte", "\\": "a backslash"}


def normalize(path: str) -> str:
    """Return ``path`` without surrounding slashes, or raise :class:`InvalidPath` saying why."""
    for character, description in _FORBIDDEN_CHARACTERS.items():
        if character in path:
            raise InvalidPath(f"Invalid path: it contains {description}")
    if path.startswith("//") or _WINDOWS_DRIVE.match(path):
        raise InvalidPath(f"Invalid path {path!r}: absolute paths are not allowed")
    stripped = path.strip("/")
    if len(stripped.encode("utf-8")) > MAX_PATH_LENGTH:
        raise InvalidPath(f"Invalid path: longer than {MAX_PATH_LENGTH} bytes")
    if not stripped:
        return ""
    for component in stripped.split("/"):
        if component in ("", ".", ".."):
            raise InvalidPath(f"Invalid path {path!r}: empty, '.' or '..' component")
        if len(component.encode("utf-8")) > MAX_COMPONENT_LENGTH:
            raise InvalidPath(
                f"Invalid path: name longer than {MAX_COMPONENT_LENGTH} bytes: {component!r}"
            )
    return stripped


def split(path: str) -> tuple[str, str]:
    """``'a/b/c'`` -> ``('a/b', 'c')``; ``'c'`` -> ``('', 'c')``."""
    parent, _, name = path.rpartition("/")
    return parent, name


def ancestors(path: str) -> list[str]:
    """Every directory above ``path``, root (``''``) first, ``path`` excluded."""
    parts = path.split("/")[:-1] if path else []
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_hidden(path: str) -> bool:
    """A path is hidden when any of its names starts with a dot.

    ``.`` and ``..`` are not names but invalid components, refused with 400 by
    :func:`normalize` rather than hidden behind a 404.
    """
    return any(
        part.startswith(".") and part not in (".", "..") for part in path.strip("/").split("/")
    )


def is_within(path: str, directory: str) -> bool:
    """Is ``path`` equal to ``directory`` or inside it?"""
    return directory == "" or path == directory or path.startswith(directory + "/")
